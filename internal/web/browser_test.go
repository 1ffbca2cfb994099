package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/view"
)

// ScreenshotDir is where the browser tests save their screenshots (the
// README names it; it is not committed).
const ScreenshotDir = "screenshots"

// chromium finds Debian's Chromium (TALON_CHROMIUM overrides). Without it
// the browser tests skip, except under CI=true, where they fail: CI
// installs it (.ci/run).
func chromium(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("TALON_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH: apt-get install -y chromium (or set TALON_CHROMIUM) to run the browser tests"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// browser starts a headless Chromium and returns the context of its
// first tab.
func browser(tb testing.TB) context.Context {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(tb)),
		chromedp.NoSandbox, // root on CI machines
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancel(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	acceptDialogs(ctx)
	return ctx
}

// acceptDialogs answers "OK" to the confirmations of a tab.
func acceptDialogs(ctx context.Context) {
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
}

// step bounds one step of a test in tab ctx.
const stepTimeout = 30 * time.Second

// run runs actions in tab ctx within a bounded time, failing the test
// with what the page shows when they do not complete.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v%s", what, err, pageSays(ctx))
	}
}

// value runs one action that returns a value, within a bounded time.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v%s", what, err, pageSays(ctx))
	}
	return v
}

// pageSays is where a tab is and what its page says, for a failure.
func pageSays(ctx context.Context) string {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(c, chromedp.Location())
	text, _ := chromedp.Run(c, chromedp.Text(chromedp.CSS("body")))
	return fmt.Sprintf("\nat %s the page says:\n%s", loc, text)
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if err := os.MkdirAll(ScreenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	buf := value(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(ScreenshotDir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The XSS payloads: shown as text, they must never run or make an
// element. Each would set window.__xss.
const (
	xssDesc  = `<script>window.__xss="desc"</script><img src=x onerror="window.__xss='desc-img'">`
	xssParam = `"><img src=x onerror="window.__xss='param'"><script>window.__xss="param"</script>`
	xssLog   = `<script>window.__xss="log"</script><img src=x onerror=window.__xss=1>`
)

const (
	operatorToken = "tok-operator-0123456789"
	viewerToken   = "tok-viewer-0123456789"
)

// browserSchedule is the small schedule the browser test serves.
func browserSchedule() string {
	return fmt.Sprintf(`state: sqlite:state.db
logs: logs
auth:
  tokens:
    - {name: olivia, role: operator, token_sha256: %s}
    - {name: victor, role: viewer, token_sha256: %s}
resources:
  db: {capacity: 1}
jobs:
  extract:
    description: Fetch prices
    period: daily
    group: prices
    command: ["sh", "-c", "echo '::talon progress 40%%'; echo fetching; exec sleep 600"]
  load:
    description: Load prices once extract has succeeded
    period: daily
    group: prices
    constraints:
      after: [extract]
      start_by: "23:59"
    command: ["true"]
  xss:
    description: %q
    period: daily
    command: ["sh", "-c", "printf '%%s\\n' \"$0\"; exit 3", %q]
  good:
    period: daily
    command: ["true"]
  hog:
    period: daily
    resources: {db: 1}
    command: ["sleep", "600"]
  waiter:
    period: daily
    resources: {db: 1}
    command: ["true"]
  weekly-report:
    period: weekly
    command: ["true"]
`, sha(operatorToken), sha(viewerToken), xssDesc, xssLog)
}

// awayFromMidnight waits, when now is in the last minutes of a UTC day,
// for the next day to begin: the test's runs are for today's daily
// period, and load's start_by is 23:59, so a test that crossed midnight
// would see its periods change halfway. At most a few minutes, once a day;
// the wait is for the calendar, not for the scheduler.
func awayFromMidnight(t *testing.T, now time.Time) {
	t.Helper()
	next := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 5, 0, time.UTC)
	if d := next.Sub(now); d < 8*time.Minute {
		t.Logf("waiting %s for the next UTC day: the test's periods must not change while it runs", d.Round(time.Second))
		select {
		case <-time.After(d):
		case <-t.Context().Done():
		}
	}
}

// TestBrowser drives Chromium against a real `talon serve` (the binary)
// with auth: an operator logs in, reads the grid and a blocked run's
// reasons, cancels and retries while another tab's grid follows live, and
// untrusted text stays text; a cross-site form is refused; a viewer sees
// no buttons and its posts get 403. It saves screenshots of each page.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	awayFromMidnight(t, time.Now().UTC())
	// A second tab of the same browser (the same cookies), opened now,
	// without a timeout.
	tab, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()
	if err := chromedp.Do(tab); err != nil {
		t.Fatal(err)
	}
	acceptDialogs(tab)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "talon.yaml"), []byte(browserSchedule()), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, dir)
	client := api.NewClient(srv.url, nil)
	client.Token = operatorToken
	tctx := t.Context()
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	text := func(c context.Context, sel string) string {
		t.Helper()
		return value(t, c, "read "+sel, chromedp.Text(css(sel)))
	}
	eval := func(c context.Context, expr string) string {
		t.Helper()
		return value(t, c, expr, chromedp.Evaluate[string](expr))
	}

	trigger := func(job string, params map[string]string) talon.Run {
		t.Helper()
		r, _, err := client.Trigger(tctx, job, talon.TriggerRequest{Params: params})
		if err != nil {
			t.Fatalf("trigger %s: %v", job, err)
		}
		return r
	}
	waitState := func(id int64, want ...talon.State) talon.Run {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			d, err := client.Run(tctx, id)
			if err == nil {
				for _, w := range want {
					if d.Run.State == w {
						return d.Run
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d: %s (%v), want %v; server log:\n%s", id, d.Run.State, err, want, srv.stderr.String())
			}
			time.Sleep(50 * time.Millisecond) // polls the store's answer, bounded by the deadline
		}
	}
	good := trigger("good", nil)
	extract := trigger("extract", nil)
	load := trigger("load", nil)
	xss := trigger("xss", map[string]string{"note": xssParam})
	hog := trigger("hog", nil)
	waitState(hog.ID, talon.StateRunning)
	waiter := trigger("waiter", nil)
	weekly := trigger("weekly-report", nil)
	waitState(good.ID, talon.StateSucceeded)
	waitState(extract.ID, talon.StateRunning)
	waitState(xss.ID, talon.StateFailed)
	waitState(weekly.ID, talon.StateSucceeded)
	blocked := waitState(load.ID, talon.StateBlocked)
	waitState(waiter.ID, talon.StateBlocked)
	if !strings.Contains(blocked.Reason, "waiting for extract") {
		t.Fatalf("load's reason = %q, want it waiting for extract", blocked.Reason)
	}

	// Unauthenticated: the grid sends to the login page.
	run(t, ctx, "open the grid", chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	if loc := value(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "/login?next=") {
		t.Errorf("without a session the grid goes to %s, want the login page", loc)
	}
	screenshot(t, ctx, "login")
	run(t, ctx, "log in as the operator",
		chromedp.SendKeys(chromedp.ID("token"), operatorToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("grid")),
		chromedp.WaitReady(css(`body[data-live="on"]`)),
	)

	// The grid shows each job's state for today.
	cell := func(id int64, state talon.State) chromedp.CSS {
		return css(fmt.Sprintf(`td.s-%s > a[href="/runs/%d"]`, state, id))
	}
	for _, c := range []struct {
		run   talon.Run
		state talon.State
	}{
		{good, talon.StateSucceeded}, {extract, talon.StateRunning}, {load, talon.StateBlocked},
		{xss, talon.StateFailed}, {hog, talon.StateRunning}, {waiter, talon.StateBlocked},
	} {
		run(t, ctx, fmt.Sprintf("grid cell of run %d (%s) is %s", c.run.ID, c.run.Job, c.state), chromedp.WaitVisible(cell(c.run.ID, c.state)))
	}
	run(t, ctx, "the running extract has a progress sliver", chromedp.WaitVisible(cell(extract.ID, talon.StateRunning)+` > progress[value="40"]`))
	if g := text(ctx, "tr.group th"); !strings.Contains(g, "prices") {
		t.Errorf("group row = %q, want prices", g)
	}
	// Keyboard: focus a cell and move down.
	run(t, ctx, "keyboard moves in the grid", chromedp.Focus(cell(good.ID, talon.StateSucceeded)), chromedp.KeyEvent(kb.ArrowDown))
	if f := eval(ctx, `document.activeElement.getAttribute("href") || document.activeElement.title || ""`); f == fmt.Sprintf("/runs/%d", good.ID) || f == "" {
		t.Errorf("ArrowDown left the focus on %q", f)
	}
	screenshot(t, ctx, "grid")

	// A blocked run's page names the constraint and its reason.
	run(t, ctx, "open the blocked run", chromedp.Click(cell(load.ID, talon.StateBlocked)), chromedp.WaitVisible(chromedp.ID("reason")))
	main := text(ctx, "main")
	for _, want := range []string{"after", "block", "waiting for extract", "start_by", "pass", "Cancel"} {
		if !strings.Contains(main, want) {
			t.Errorf("blocked run page lacks %q:\n%s", want, main)
		}
	}
	screenshot(t, ctx, "run-blocked")

	// Untrusted text stays text: the description, a param, a log line.
	run(t, ctx, "open the xss run", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", srv.url, xss.ID)), chromedp.WaitReady(css(`#log[data-done="true"]`)))
	main = text(ctx, "main")
	for _, want := range []string{xssParam, xssLog} {
		if !strings.Contains(main, want) {
			t.Errorf("run page does not show %q as text:\n%s", want, main)
		}
	}
	noXSS(t, ctx, "run page")
	screenshot(t, ctx, "run-failed")
	run(t, ctx, "open the xss job", chromedp.Navigate(srv.url+"/jobs/xss"), chromedp.WaitVisible(css("p.desc")))
	if d := text(ctx, "p.desc"); d != xssDesc {
		t.Errorf("job description shows %q, want the text %q", d, xssDesc)
	}
	noXSS(t, ctx, "job page")
	run(t, ctx, "open the grid again", chromedp.Navigate(srv.url+"/"), chromedp.WaitReady(css(`body[data-live="on"]`)))
	noXSS(t, ctx, "grid")

	// Cancel and retry from a second tab while this one shows the grid:
	// the grid follows without a reload.
	run(t, ctx, "mark the grid page", chromedp.Evaluate[chromedp.Void](`window.__sameGrid = true`))
	run(t, tab, "open the running extract", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", srv.url, extract.ID)), chromedp.WaitVisible(chromedp.ID("cancel")))
	run(t, tab, "cancel it", chromedp.Click(chromedp.ID("cancel")), chromedp.WaitVisible(chromedp.Search(`//p[@class="notice" and contains(., "cancelled")]`)), chromedp.WaitVisible(chromedp.ID("retry")))
	if r := waitState(extract.ID, talon.StateFailed); !strings.Contains(r.Reason, "cancelled by olivia") {
		t.Errorf("cancelled run's reason = %q, want cancelled by olivia", r.Reason)
	}
	run(t, ctx, "the grid shows the cancel", chromedp.WaitVisible(cell(extract.ID, talon.StateFailed)))
	run(t, tab, "retry it", chromedp.Click(chromedp.ID("retry")), chromedp.WaitVisible(chromedp.Search(`//p[@class="notice" and contains(., "retry of run")]`)))
	retried, err := client.Runs(tctx, view.RunFilter{Job: "extract", Limit: 1})
	if err != nil || len(retried) != 1 || retried[0].ID == extract.ID || retried[0].Attempt != 2 {
		t.Fatalf("after retry the newest extract is %+v (%v), want attempt 2", retried, err)
	}
	if loc := value(t, tab, "location", chromedp.Location()); !strings.HasSuffix(loc, fmt.Sprintf("/runs/%d", retried[0].ID)) {
		t.Errorf("retry went to %s", loc)
	}
	if n := text(tab, "p.notice"); n != fmt.Sprintf("retry of run %d: attempt 2", extract.ID) {
		t.Errorf("retry's notice = %q", n)
	}
	waitState(retried[0].ID, talon.StateRunning)
	run(t, ctx, "the grid shows the retry", chromedp.WaitVisible(cell(retried[0].ID, talon.StateRunning)))
	if same := eval(ctx, `String(window.__sameGrid === true)`); same != "true" {
		t.Error("the grid page was reloaded; want live updates in place")
	}

	// The other pages, for the screenshots and a look at each.
	run(t, tab, "open a running run", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", srv.url, retried[0].ID)),
		chromedp.WaitVisible(css("progress.big")), chromedp.WaitReady(chromedp.Search(`//pre[@id="log" and contains(., "fetching")]`)))
	screenshot(t, tab, "run-running")
	run(t, tab, "open the job page", chromedp.Navigate(srv.url+"/jobs/extract"), chromedp.WaitVisible(css(".chart svg")))
	screenshot(t, tab, "job")
	today := retried[0].Period
	run(t, tab, "open the period timeline", chromedp.Navigate(srv.url+"/periods/"+today), chromedp.WaitVisible(css(".gantt svg")))
	main = text(tab, "main")
	for _, want := range []string{"extract", "load", "start_by"} {
		if !strings.Contains(main, want) {
			t.Errorf("period page lacks %q", want)
		}
	}
	if n := eval(tab, `String(document.querySelectorAll(".gantt path.edge").length)`); n == "0" {
		t.Errorf("the timeline draws no dependency, want extract → load")
	}
	screenshot(t, tab, "period")
	run(t, tab, "open the resources", chromedp.Navigate(srv.url+"/resources"), chromedp.WaitVisible(css("table.tree")))
	if main = text(tab, "main"); !strings.Contains(main, fmt.Sprintf("run %d", hog.ID)) || !strings.Contains(main, fmt.Sprintf("run %d", waiter.ID)) {
		t.Errorf("resources page lacks the holder (run %d) or the waiter (run %d):\n%s", hog.ID, waiter.ID, main)
	}
	screenshot(t, tab, "resources")
	run(t, tab, "a phone's width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.ID("grid")))
	screenshot(t, tab, "grid-phone")
	run(t, tab, "a phone's run page", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", srv.url, load.ID)), chromedp.WaitVisible(chromedp.ID("reason")))
	screenshot(t, tab, "run-phone")
	if _, err := chromedp.Call(tab, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	run(t, tab, "dark", chromedp.ResetViewport(), chromedp.Navigate(srv.url+"/periods/"+today), chromedp.WaitVisible(css(".gantt svg")))
	screenshot(t, tab, "period-dark")

	// A cross-site form posting to the dashboard is refused, and changes
	// nothing. The evil page is on another site (localhost, not
	// 127.0.0.1).
	port := strings.TrimPrefix(srv.url, "http://127.0.0.1:")
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="http://127.0.0.1:%s/runs/%d/cancel"></form><script>document.getElementById("f").submit()</script>`, port, hog.ID)
	}))
	defer evil.Close()
	run(t, tab, "a cross-site post", chromedp.Navigate(strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)),
		chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "403")]`)))
	if main = text(tab, "main"); !strings.Contains(main, "cross-site request refused") {
		t.Errorf("cross-site post answered:\n%s", main)
	}
	if r := waitState(hog.ID, talon.StateRunning, talon.StateFailed); r.State != talon.StateRunning {
		t.Errorf("the cross-site post changed run %d: %s %s", hog.ID, r.State, r.Reason)
	}
	// Without the browser's help (no Sec-Fetch-Site, no Origin): a post
	// with the session cookie but without the CSRF token is refused too,
	// on a page and on the API.
	if status, body := post(t, srv.url+fmt.Sprintf("/runs/%d/cancel", hog.ID), operatorToken); status != http.StatusForbidden || !strings.Contains(body, "CSRF") {
		t.Errorf("post without CSRF token: %d %s", status, body)
	}
	if status, body := post(t, srv.url+fmt.Sprintf("/api/v1/runs/%d/cancel", hog.ID), operatorToken); status != http.StatusForbidden {
		t.Errorf("API post with the cookie and no CSRF token: %d %s", status, body)
	}
	waitState(hog.ID, talon.StateRunning)

	// A viewer sees no buttons, and its posts (with a good CSRF token)
	// get 403.
	vctx, cancelV := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancelV()
	if err := chromedp.Do(vctx); err != nil {
		t.Fatal(err)
	}
	run(t, vctx, "log in as the viewer", chromedp.Navigate(srv.url+"/login"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), viewerToken), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("grid")))
	for _, target := range []string{fmt.Sprintf("/runs/%d", hog.ID), fmt.Sprintf("/runs/%d", xss.ID), "/jobs/hog"} {
		run(t, vctx, "viewer opens "+target, chromedp.Navigate(srv.url+target), chromedp.WaitVisible(css("main h1")))
		if n := eval(vctx, `String(document.querySelectorAll("main form, main button").length)`); n != "0" {
			t.Errorf("viewer sees %s forms or buttons on %s, want none", n, target)
		}
	}
	screenshot(t, vctx, "job-viewer")
	statuses := value(t, vctx, "viewer posts with its CSRF token", chromedp.Evaluate[[]int](fmt.Sprintf(`Promise.all(["/runs/%d/cancel", "/runs/%d/retry", "/jobs/hog/pause", "/jobs/good/trigger"].map(u =>
		fetch(u, {method: "POST", headers: {"X-CSRF-Token": document.querySelector('meta[name="talon-csrf"]').content}}).then(r => r.status)))`, hog.ID, xss.ID),
		chromedp.EvalAwaitPromise))
	if len(statuses) != 4 {
		t.Errorf("viewer posts: %v", statuses)
	}
	for i, s := range statuses {
		if s != http.StatusForbidden {
			t.Errorf("viewer post %d: %d, want 403", i, s)
		}
	}
	waitState(hog.ID, talon.StateRunning)
}

// noXSS fails when a payload ran or made an element.
func noXSS(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	ran := value(t, ctx, "check for XSS on the "+where, chromedp.Evaluate[string](`String(window.__xss)`))
	imgs := value(t, ctx, "check for XSS elements on the "+where, chromedp.Evaluate[int](`document.querySelectorAll('img[src="x"], main script').length`))
	if ran != "undefined" || imgs != 0 {
		t.Errorf("%s: a payload ran (window.__xss = %s) or made %d elements", where, ran, imgs)
	}
}

// post sends a form post with the session cookie of token and no CSRF
// token; it returns the status and body.
func post(t *testing.T, target, token string) (int, string) {
	t.Helper()
	form := url.Values{"reason": {"test"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body)
}

// BenchmarkGridFirstPaint is the grid's first paint in Chromium for 500
// jobs by 30 days of runs, from a real `talon serve` on loopback (goal:
// under 1 s): the mean of the navigations' first-contentful-paint, and of
// their time to the answer's last byte.
//
//	go test -run '^$' -bench GridFirstPaint -benchtime 10x ./internal/web/
func BenchmarkGridFirstPaint(b *testing.B) {
	ctx := browser(b)
	dir := b.TempDir()
	cfg := "state: sqlite:state.db\nlogs: logs\n" + gridSchedule(500)
	if err := os.WriteFile(filepath.Join(dir, "talon.yaml"), []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(b.Context(), "sqlite:"+filepath.Join(dir, "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	seedGrid(b, st, 500, 30, 0, time.Now())
	st.Close()
	srv := serve(b, dir)
	page := srv.url + "/?n=30"
	type timing struct {
		Paint    float64 `json:"paint"`
		Response float64 `json:"response"`
		Cells    int     `json:"cells"`
	}
	measure := func() timing {
		c, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(c, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("grid"))); err != nil {
			b.Fatal(err)
		}
		v, err := chromedp.Run(c, chromedp.Evaluate[timing](`new Promise(done => {
			const read = () => {
				const p = performance.getEntriesByName("first-contentful-paint")[0];
				if (!p) return setTimeout(read, 20);
				const n = performance.getEntriesByType("navigation")[0];
				done({paint: p.startTime, response: n.responseEnd, cells: document.querySelectorAll("#grid td > a").length});
			};
			read();
		})`, chromedp.EvalAwaitPromise))
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	if t := measure(); t.Cells != 15000 { // warms the assets' cache
		b.Fatalf("the grid shows %d runs, want 15000", t.Cells)
	}
	var paint, response float64
	b.ResetTimer()
	for b.Loop() {
		t := measure()
		paint += t.Paint
		response += t.Response
	}
	b.ReportMetric(paint/float64(b.N), "ms/first-paint")
	b.ReportMetric(response/float64(b.N), "ms/response")
}
