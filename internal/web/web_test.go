package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/auth"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/view"
	"github.com/talonhq/talon/internal/web"
)

const pagesSchedule = `
calendars:
  uk: {weekend: [sat, sun], holidays: [2026-11-26]}
jobs:
  a:
    period: daily
    group: g1
    description: say "hi" <b>bold</b> & go
    command: ["true"]
  b:
    period: {type: daily, calendar: uk}
    environment: prod
    command: ["true"]
  c:
    period: daily
    group: g1
    constraints: {after: [a], start_by: "09:00"}
    command: ["true"]
  w:
    period: weekly
    triggers: [{schedule: "@weekly"}]
    command: ["true"]
`

var day = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// addRun creates a run and moves it through states at the given times
// (blocked at created, then each state at its time).
func addRun(t *testing.T, st store.Store, job, period string, created time.Time, steps ...step) talon.Run {
	t.Helper()
	ctx := context.Background()
	res, err := st.CreateRuns(ctx, []store.CreateRun{{Job: job, Period: period, Trigger: talon.TriggerAPI, Key: job + period + created.String(), Executor: "local", Now: created}})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0].Run
	for _, s := range steps {
		out, err := st.Transition(ctx, []store.Transition{{RunID: r.ID, From: []talon.State{r.State}, To: s.to, Now: s.at, Owner: "test", Reason: "test"}})
		if err != nil || out[0].Err != nil {
			t.Fatalf("%s → %s: %v %v", r.State, s.to, err, out[0].Err)
		}
		r = out[0].Run
	}
	return r
}

type step struct {
	to talon.State
	at time.Time
}

func at(h, m int) time.Time {
	return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

func TestGrid(t *testing.T) {
	d := newDashboard(t, pagesSchedule)
	ra := addRun(t, d.st, "a", "daily/2026-11-27", at(6, 0), step{talon.StateReady, at(6, 0)}, step{talon.StateRunning, at(6, 0)}, step{talon.StateSucceeded, at(7, 0)})
	rb := addRun(t, d.st, "b", "prod:daily/2026-11-27", at(6, 0), step{talon.StateFailed, at(6, 1)})
	rb2 := addRun(t, d.st, "b", "prod:daily/2026-11-27", at(6, 5))
	rc := addRun(t, d.st, "c", "daily/2026-11-27", at(6, 0))

	g, err := d.reads.Grid(t.Context(), view.GridFilter{End: "daily/2026-11-30", Count: 7})
	if err != nil {
		t.Fatal(err)
	}
	if g.Type != talon.Daily || !slices.Equal(g.Columns, []string{"daily/2026-11-24", "daily/2026-11-25", "daily/2026-11-26", "daily/2026-11-27", "daily/2026-11-28", "daily/2026-11-29", "daily/2026-11-30"}) {
		t.Fatalf("type %s columns %v", g.Type, g.Columns)
	}
	if !slices.Equal(g.Environments, []string{"", "prod"}) || len(g.Types) != 2 {
		t.Errorf("environments %q types %v", g.Environments, g.Types)
	}
	// Groups: (no env, g1) then (prod, none); rows sorted.
	if len(g.Groups) != 2 || g.Groups[0].Group != "g1" || g.Groups[1].Environment != "prod" {
		t.Fatalf("groups = %+v", g.Groups)
	}
	rows := map[string]view.GridRow{}
	for _, gr := range g.Groups {
		for _, r := range gr.Rows {
			rows[r.Job] = r
		}
	}
	fri := 3
	if c := rows["a"].Cells[fri]; c.State != talon.StateSucceeded || c.Run != ra.ID || c.Runs != 1 {
		t.Errorf("a's Friday = %+v", c)
	}
	if c := rows["b"].Cells[fri]; c.State != talon.StateBlocked || c.Run != rb2.ID || c.Runs != 2 || c.Period != "prod:daily/2026-11-27" || c.Counts[talon.StateFailed] != 1 {
		t.Errorf("b's Friday = %+v (runs %d, %d)", c, rb.ID, rb2.ID)
	}
	if c := rows["c"].Cells[fri]; c.State != talon.StateBlocked || c.Run != rc.ID || c.Attempt != 1 {
		t.Errorf("c's Friday = %+v", c)
	}
	// b follows the uk calendar: the holiday and the weekend are no periods.
	for i, want := range []bool{false, false, true, false, true, true, false} {
		if got := rows["b"].Cells[i].NotPeriod; got != want {
			t.Errorf("b's %s: not a period = %v, want %v", g.Columns[i], got, want)
		}
		if rows["a"].Cells[i].NotPeriod {
			t.Errorf("a (no calendar) has no period on %s", g.Columns[i])
		}
	}
	// Filters.
	g, err = d.reads.Grid(t.Context(), view.GridFilter{End: "daily/2026-11-30", Count: 7, States: []talon.State{talon.StateSucceeded}})
	if err != nil || g.Jobs != 1 || g.Groups[0].Rows[0].Job != "a" {
		t.Errorf("state filter: %d jobs %+v %v", g.Jobs, g.Groups, err)
	}
	g, err = d.reads.Grid(t.Context(), view.GridFilter{End: "daily/2026-11-30", Count: 7, Environment: "prod"})
	if err != nil || g.Jobs != 1 || g.Groups[0].Rows[0].Job != "b" {
		t.Errorf("environment filter: %d jobs %v", g.Jobs, err)
	}
	g, err = d.reads.Grid(t.Context(), view.GridFilter{Type: talon.Weekly})
	if err != nil || g.Jobs != 1 || len(g.Columns) != view.DefaultColumns[talon.Weekly] {
		t.Errorf("weekly: %d jobs, %d columns, %v", g.Jobs, len(g.Columns), err)
	}
	for _, f := range []view.GridFilter{{Type: "fortnightly"}, {Count: 1000}, {End: "weekly/2026-W48"}, {End: "prod:daily/2026-11-27"}} {
		if _, err := d.reads.Grid(t.Context(), f); err == nil {
			t.Errorf("filter %+v: no error", f)
		}
	}

	// The page: escaped description, cells, a header for each period.
	body := d.get(t, "/?end=daily/2026-11-30&n=7").Body.String()
	for _, want := range []string{
		`title="say &#34;hi&#34; &lt;b&gt;bold&lt;/b&gt; &amp; go"`,
		`<td class="s-succeeded"><a href="/runs/1" title="succeeded"></a></td>`,
		`<td class="s-blocked"><a href="/runs/3" title="blocked, 2 runs"><span class="n">2</span></a></td>`,
		`<td class="s-none off"><span title="not a period of this job"></span></td>`,
		`<span class="env">prod</span>`,
		`href="/periods/daily/2026-11-27"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("grid page lacks %s", want)
		}
	}
	if strings.Contains(body, "<b>bold") {
		t.Error("the description's markup reached the page")
	}
	rec := httptest.NewRecorder()
	d.server.ServeHTTP(rec, httptest.NewRequest("GET", "/?type=fortnightly", nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "fortnightly") || rec.Header().Get("Content-Security-Policy") != web.CSP {
		t.Errorf("bad type: %d %s %q", rec.Code, rec.Body, rec.Header().Get("Content-Security-Policy"))
	}
}

func TestTimeline(t *testing.T) {
	d := newDashboard(t, pagesSchedule)
	ra := addRun(t, d.st, "a", "daily/2026-11-27", at(6, 0), step{talon.StateReady, at(6, 0)}, step{talon.StateRunning, at(6, 0)}, step{talon.StateSucceeded, at(7, 0)})
	rc := addRun(t, d.st, "c", "daily/2026-11-27", at(6, 0), step{talon.StateReady, at(7, 1)}, step{talon.StateRunning, at(7, 1)}, step{talon.StateSucceeded, at(8, 0)})
	late := addRun(t, d.st, "c", "daily/2026-11-27", at(10, 0), step{talon.StateFailed, at(10, 0)})
	tl, err := d.reads.Timeline(t.Context(), "daily/2026-11-27")
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Runs) != 3 || !slices.Equal(tl.Edges, []view.Edge{{From: "a", To: "c"}}) {
		t.Fatalf("runs %d edges %v", len(tl.Runs), tl.Edges)
	}
	if !slices.Equal(tl.Critical, []int64{ra.ID, rc.ID}) {
		t.Errorf("critical path = %v, want a then c", tl.Critical)
	}
	for _, r := range tl.Runs {
		wantDeadline := r.Job == "c"
		if got := !r.Deadline.IsZero(); got != wantDeadline || (wantDeadline && !r.Deadline.Equal(at(9, 0))) {
			t.Errorf("run %d (%s): deadline %v", r.ID, r.Job, r.Deadline)
		}
		if want := r.ID == late.ID; r.Missed != want {
			t.Errorf("run %d: missed = %v, want %v", r.ID, r.Missed, want)
		}
	}
	body := d.get(t, "/periods/daily/2026-11-27").Body.String()
	for _, want := range []string{`class="edge critical"`, "1 missed start_by", `class="row critical"`} {
		if !strings.Contains(body, want) {
			t.Errorf("period page lacks %s", want)
		}
	}
	// A key without environment shows every environment's runs; one
	// with an environment, that environment's.
	rb := addRun(t, d.st, "b", "prod:daily/2026-11-27", at(6, 0))
	if tl, err := d.reads.Timeline(t.Context(), "daily/2026-11-27"); err != nil || len(tl.Runs) != 4 || tl.Runs[3].ID != rb.ID {
		t.Errorf("all environments: %d runs (%v)", len(tl.Runs), err)
	}
	if tl, err := d.reads.Timeline(t.Context(), "prod:daily/2026-11-27"); err != nil || len(tl.Runs) != 1 || tl.Runs[0].ID != rb.ID {
		t.Errorf("prod: %d runs (%v)", len(tl.Runs), err)
	}
	// The late run of c shows a's run, which it waited for.
	body = d.get(t, "/runs/"+strconv.FormatInt(late.ID, 10)).Body.String()
	if !strings.Contains(body, `<h2>Upstream</h2>`) || !strings.Contains(body, `<a href="/runs/`+strconv.FormatInt(ra.ID, 10)+`">run `) {
		t.Errorf("c's run page does not show a's run %d as its upstream", ra.ID)
	}
	if _, err := d.reads.Timeline(t.Context(), "daily/27"); err == nil {
		t.Error("a bad key: no error")
	}
}

func TestJobPage(t *testing.T) {
	d := newDashboard(t, pagesSchedule)
	jd, err := d.reads.JobDetail(t.Context(), "w", 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(jd.Fires) != 3 || jd.Fires[0].Time.Weekday() != time.Sunday || !strings.HasPrefix(jd.Fires[0].Period, "weekly/") {
		t.Errorf("fires = %+v", jd.Fires)
	}
	jd, err = d.reads.JobDetail(t.Context(), "c", 3, 10)
	if err != nil || !slices.Equal(jd.Upstreams, []string{"a"}) || len(jd.Constraints) != 2 {
		t.Errorf("c: %+v %v", jd, err)
	}
	if jd, _ := d.reads.JobDetail(t.Context(), "a", 3, 10); !slices.Equal(jd.Downstreams, []string{"c"}) {
		t.Errorf("a's downstreams = %v", jd.Downstreams)
	}
	if _, err := d.reads.JobDetail(t.Context(), "nope", 3, 10); err == nil {
		t.Error("unknown job: no error")
	}
	body := d.get(t, "/jobs/c").Body.String()
	for _, want := range []string{"start_by", `<code>&#34;09:00&#34;</code>`, `href="/jobs/a"`, `id="pause"`} {
		if !strings.Contains(body, want) {
			t.Errorf("job page lacks %s", want)
		}
	}
}

// TestPagesAuthorization calls every page as nobody, a viewer and an
// operator (with the session cookie and, for posts, the session's CSRF
// token): reads need a session, state changes the operator's role, and
// the permission table decides each, as it does the API's routes.
func TestPagesAuthorization(t *testing.T) {
	chain, err := auth.NewTokens([]auth.TokenEntry{
		{Name: "vera", Role: auth.RoleViewer, TokenSHA256: sha("tok-v")},
		{Name: "otto", Role: auth.RoleOperator, TokenSHA256: sha("tok-o")},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := newDashboardAuth(t, pagesSchedule, chain)
	addRun(t, d.st, "a", "daily/2026-11-27", at(6, 0), step{talon.StateFailed, at(6, 1)})
	paths := strings.NewReplacer("{$}", "", "{id}", "1", "{name}", "a", "{key...}", "daily/2026-11-27", "{file}", "app.css")
	pages := d.dash.Pages()
	if len(pages) != len(d.server.PageInfos()) {
		t.Fatalf("%d pages, the server routes %d", len(pages), len(d.server.PageInfos()))
	}
	for _, pg := range pages {
		method, pattern, _ := strings.Cut(pg.Pattern, " ")
		target := paths.Replace(pattern)
		for _, who := range []struct{ name, token string }{{"nobody", ""}, {"viewer", "tok-v"}, {"operator", "tok-o"}} {
			form := url.Values{"state": {"succeeded"}, "reason": {"fixed"}}
			if who.token != "" {
				form.Set(api.CSRFField, d.sessions.TokenFor(who.token))
			}
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader(form.Encode())
			}
			req := httptest.NewRequest(method, target, body)
			if method == http.MethodPost {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if who.token != "" {
				req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: who.token})
			}
			rec := httptest.NewRecorder()
			d.server.ServeHTTP(rec, req)
			allowed := pg.Perm == auth.PermPublic ||
				who.name == "viewer" && pg.Perm == auth.PermRead ||
				who.name == "operator" && (pg.Perm == auth.PermRead || pg.Perm == auth.PermOperate)
			refused := rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden ||
				rec.Code == http.StatusSeeOther && strings.HasPrefix(rec.Header().Get("Location"), "/login?")
			// The login form's own answers (401 for a wrong token, 403
			// without its CSRF token) are the browser test's to check.
			if allowed == refused && !(pg.Perm == auth.PermPublic && method == http.MethodPost) {
				t.Errorf("%s %s as %s: %d (Location %q), want allowed=%v", method, target, who.name, rec.Code, rec.Header().Get("Location"), allowed)
			}
			if rec.Header().Get("Content-Security-Policy") != web.CSP {
				t.Errorf("%s %s as %s: no CSP", method, target, who.name)
			}
		}
	}
}

// TestActionsAudited: a state change from a page is audited as the API's
// twin is, with who, what and how it ended; a refused one too.
func TestActionsAudited(t *testing.T) {
	d := newDashboard(t, pagesSchedule)
	r := addRun(t, d.st, "a", "daily/2026-11-27", at(6, 0))
	post := func(target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		get := httptest.NewRequest("GET", "/", nil)
		d.server.ServeHTTP(rec, get)
		var browser string
		for _, c := range rec.Result().Cookies() {
			if c.Name == api.CSRFCookie {
				browser = c.Value
			}
		}
		req := httptest.NewRequest("POST", target, strings.NewReader(url.Values{api.CSRFField: {csrfOf(t, rec.Body.String())}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: api.CSRFCookie, Value: browser})
		rec = httptest.NewRecorder()
		d.server.ServeHTTP(rec, req)
		return rec
	}
	id := strconv.FormatInt(r.ID, 10)
	if rec := post("/runs/" + id + "/cancel"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/runs/"+id {
		t.Fatalf("cancel: %d %s", rec.Code, rec.Body)
	}
	if rec := post("/runs/" + id + "/cancel"); rec.Code != http.StatusConflict {
		t.Errorf("second cancel: %d, want 409", rec.Code)
	}
	entries, err := d.reads.Audit(t.Context(), view.AuditFilter{Limit: 10})
	if err != nil || len(entries) != 2 {
		t.Fatalf("audit = %+v (%v), want two entries", entries, err)
	}
	if e := entries[1]; e.Action != "cancel" || e.Object != "run "+id || e.Outcome != "ok" || e.Actor != "api" {
		t.Errorf("first cancel's audit = %+v", e)
	}
	if e := entries[0]; !strings.HasPrefix(e.Outcome, "conflict") {
		t.Errorf("second cancel's audit = %+v", e)
	}
}

// csrfOf reads the CSRF token a page carries.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `<meta name="talon-csrf" content="`)
	tok, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 || tok == "" {
		t.Fatal("the page carries no CSRF token")
	}
	return tok
}
