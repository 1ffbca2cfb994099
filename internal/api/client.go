package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/tlscert"
	"github.com/talonhq/talon/internal/view"
)

// Client speaks the API of a Talon server. Its methods mirror Backend's,
// so a Client is itself a Backend. Errors the server reports come back as
// *talon.Error with the server's code and message; a server that cannot
// be reached is a *talon.Error with code unavailable.
type Client struct {
	base string
	http *http.Client

	// User, when set, is sent as the caller's name (UserHeader); a server
	// without authentication records it as who cancelled or retried.
	User string
	// Token, when set, is sent as a bearer token.
	Token string
}

var _ Backend = (*Client)(nil)

// NewClient returns a client of the server at baseURL (such as
// "http://127.0.0.1:7070"). A nil httpClient means one without a timeout:
// calls are bounded by their context, and a log may stream for long.
func NewClient(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: httpClient}
}

// BaseURL is the server's address as given to NewClient.
func (c *Client) BaseURL() string { return c.base }

// Jobs lists the jobs of the loaded schedule.
func (c *Client) Jobs(ctx context.Context) ([]view.JobInfo, error) {
	var out []view.JobInfo
	_, err := c.do(ctx, http.MethodGet, "jobs", nil, nil, &out)
	return out, err
}

// Resources returns the resource tree with its use and queue.
func (c *Client) Resources(ctx context.Context) (view.ResourcesView, error) {
	var out view.ResourcesView
	_, err := c.do(ctx, http.MethodGet, "resources", nil, nil, &out)
	return out, err
}

// Runs lists runs matching f, newest first. A zero Limit means the
// server's default (100).
func (c *Client) Runs(ctx context.Context, f view.RunFilter) ([]talon.Run, error) {
	q := url.Values{}
	set(q, "job", f.Job)
	set(q, "period", f.Period)
	for _, s := range f.States {
		q.Add("state", string(s))
	}
	if f.BeforeID > 0 {
		q.Set("before", strconv.FormatInt(f.BeforeID, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out []talon.Run
	_, err := c.do(ctx, http.MethodGet, "runs", q, nil, &out)
	return out, err
}

// Run returns a run with its latest decisions and its history.
func (c *Client) Run(ctx context.Context, id int64) (view.RunDetail, error) {
	var out view.RunDetail
	_, err := c.do(ctx, http.MethodGet, runPath(id, ""), nil, nil, &out)
	return out, err
}

// Periods lists the periods that have runs, newest first.
func (c *Client) Periods(ctx context.Context, f view.PeriodFilter) ([]view.PeriodInfo, error) {
	q := url.Values{}
	set(q, "job", f.Job)
	set(q, "before", f.Before)
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out []view.PeriodInfo
	_, err := c.do(ctx, http.MethodGet, "periods", q, nil, &out)
	return out, err
}

// Trigger creates a run of job. created is false when req.Key matched an
// existing run, which is returned.
func (c *Client) Trigger(ctx context.Context, job string, req talon.TriggerRequest) (talon.Run, bool, error) {
	var out talon.Run
	status, err := c.do(ctx, http.MethodPost, "jobs/"+url.PathEscape(job)+"/trigger", nil, req, &out)
	return out, status == http.StatusCreated, err
}

// PeriodRange lists job's period keys from one key to another.
func (c *Client) PeriodRange(ctx context.Context, job, from, to string) ([]string, error) {
	var out PeriodRange
	q := url.Values{"from": {from}, "to": {to}}
	_, err := c.do(ctx, http.MethodGet, "jobs/"+url.PathEscape(job)+"/periods", q, nil, &out)
	return out.Periods, err
}

// Cancel cancels a run. by names who cancels, for a server without
// authentication; it overrides c.User when set.
func (c *Client) Cancel(ctx context.Context, id int64, by string) (talon.Run, error) {
	var out talon.Run
	_, err := c.doAs(ctx, by, http.MethodPost, runPath(id, "cancel"), nil, nil, &out)
	return out, err
}

// Retry creates a new attempt of a finished run and returns it.
func (c *Client) Retry(ctx context.Context, id int64, by string) (talon.Run, error) {
	var out talon.Run
	_, err := c.doAs(ctx, by, http.MethodPost, runPath(id, "retry"), nil, nil, &out)
	return out, err
}

// Logs opens a run's log as it is now; the caller closes it.
func (c *Client) Logs(ctx context.Context, id int64) (io.ReadCloser, error) {
	return c.logs(ctx, id, nil)
}

// FollowLogs opens a run's log and follows it: the server streams what
// the run appends until the run has finished and its log is drained, and
// then ends the stream. A stream cut short (the server shut down, the
// connection dropped) ends in an error, io.ErrUnexpectedEOF or another,
// never in a clean io.EOF. The caller closes it; ctx bounds it.
func (c *Client) FollowLogs(ctx context.Context, id int64) (io.ReadCloser, error) {
	return c.logs(ctx, id, url.Values{"follow": {"true"}})
}

func (c *Client) logs(ctx context.Context, id int64, q url.Values) (io.ReadCloser, error) {
	resp, err := c.send(ctx, c.User, http.MethodGet, runPath(id, "logs"), q, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp.Body, nil
}

// Reload asks the server to re-read its schedule, and returns its summary.
func (c *Client) Reload(ctx context.Context) (string, error) {
	var out ReloadResult
	_, err := c.do(ctx, http.MethodPost, "reload", nil, nil, &out)
	return out.Summary, err
}

// SetProgress replaces a run's progress.
func (c *Client) SetProgress(ctx context.Context, id int64, p talon.Progress) error {
	_, err := c.do(ctx, http.MethodPost, runPath(id, "progress"), nil, p, nil)
	return err
}

// AddArtifact records an artifact of a run, with an optional name.
func (c *Client) AddArtifact(ctx context.Context, id int64, u, name string) (talon.Artifact, error) {
	var out talon.Artifact
	_, err := c.do(ctx, http.MethodPost, runPath(id, "artifacts"), nil, ArtifactRequest{URL: u, Name: name}, &out)
	return out, err
}

// Artifacts lists artifacts, newest first.
func (c *Client) Artifacts(ctx context.Context, f view.ArtifactFilter) ([]talon.Artifact, error) {
	q := url.Values{}
	set(q, "job", f.Job)
	set(q, "period", f.Period)
	if f.BeforeID > 0 {
		q.Set("before", strconv.FormatInt(f.BeforeID, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out []talon.Artifact
	_, err := c.do(ctx, http.MethodGet, "artifacts", q, nil, &out)
	return out, err
}

// Health is nil when the server and its store work.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "healthz", nil, nil, nil)
	return err
}

func runPath(id int64, verb string) string {
	p := "runs/" + strconv.FormatInt(id, 10)
	if verb != "" {
		p += "/" + verb
	}
	return p
}

func set(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) (int, error) {
	return c.doAs(ctx, c.User, method, path, q, in, out)
}

// doAs sends one request and decodes its JSON answer into out.
func (c *Client) doAs(ctx context.Context, user, method, path string, q url.Values, in, out any) (int, error) {
	if user == "" {
		user = c.User
	}
	resp, err := c.send(ctx, user, method, path, q, in)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return resp.StatusCode, readError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body) // let the connection be reused
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return resp.StatusCode, nil
}

func (c *Client) send(ctx context.Context, user, method, path string, q url.Values, in any) (*http.Response, error) {
	return c.sendWith(ctx, user, method, path, q, in, nil)
}

// sendWith is send with extra request headers.
func (c *Client) sendWith(ctx context.Context, user, method, path string, q url.Values, in any, hdr http.Header) (*http.Response, error) {
	u := c.base + Prefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, talon.Errorf(talon.EINVALID, "server address %q: %v", c.base, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	if user != "" {
		req.Header.Set(UserHeader, user)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.unreachable(err)
	}
	return resp, nil
}

// UntrustedPrefix starts the message of a server whose TLS certificate
// the client could not verify: the fix is a CA to trust, not a server to
// start.
const UntrustedPrefix = "cannot verify the TLS certificate of talon at"

// unreachable describes a transport failure in the words a user needs:
// which address, and the cause without Go's "dial tcp" wrapping.
func (c *Client) unreachable(err error) error {
	if tlscert.IsVerifyError(err) {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &talon.Error{Code: talon.EUNAVAILABLE, Message: fmt.Sprintf("%s %s: %v", UntrustedPrefix, c.base, err)}
	}
	cause := err.Error()
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		cause = "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		cause = "connection reset"
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err.Error()
		}
	}
	return &talon.Error{Code: talon.EUNAVAILABLE, Message: fmt.Sprintf("cannot reach talon at %s: %s", c.base, cause)}
}

// readError turns an error answer into a *talon.Error: the server's own
// code and message when it sent them, else the status in words (an answer
// from a proxy, or from something that is not Talon).
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
		return &talon.Error{Code: eb.Error.Code, Message: eb.Error.Message}
	}
	msg := fmt.Sprintf("server answered %s", resp.Status)
	if s := strings.TrimSpace(string(b)); s != "" {
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		msg += ": " + s
	}
	return &talon.Error{Code: codeOf(resp.StatusCode), Message: msg}
}
