package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/auth"
)

// The state changes: forms posted by the pages, each the twin of an API
// route (the same permission, the same audit action), answered with a
// redirect to the page to look at next (so a reload does not post again).

func (d *Dashboard) cancel(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	run, err := d.b.Cancel(r.Context(), id, api.Caller(r.Context()))
	if err != nil {
		return err
	}
	d.redirect(w, r, fmt.Sprintf("/runs/%d", id), fmt.Sprintf("cancelled: %s", run.State))
	return nil
}

func (d *Dashboard) retry(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	run, err := d.b.Retry(r.Context(), id, api.Caller(r.Context()))
	if err != nil {
		return err
	}
	d.redirect(w, r, fmt.Sprintf("/runs/%d", run.ID), fmt.Sprintf("retry of run %d: attempt %d", id, run.Attempt))
	return nil
}

func (d *Dashboard) mark(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	st := talon.State(r.PostFormValue("state"))
	if st != talon.StateSucceeded && st != talon.StateFailed {
		return talon.Errorf(talon.EINVALID, "mark: state %q: want succeeded or failed", st)
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		return talon.Errorf(talon.EINVALID, "mark: a reason is required (say what was fixed by hand)")
	}
	run, err := d.b.Mark(r.Context(), id, st, reason, api.Caller(r.Context()))
	if err != nil {
		return err
	}
	d.redirect(w, r, fmt.Sprintf("/runs/%d", id), "marked "+string(run.State))
	return nil
}

func (d *Dashboard) trigger(w http.ResponseWriter, r *http.Request) error {
	job := r.PathValue("name")
	req := talon.TriggerRequest{Period: strings.TrimSpace(r.PostFormValue("period"))}
	// Params: one NAME=VALUE a line.
	for i, line := range strings.Split(r.PostFormValue("params"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return talon.Errorf(talon.EINVALID, "params line %d: want NAME=VALUE", i+1)
		}
		if req.Params == nil {
			req.Params = map[string]string{}
		}
		req.Params[strings.TrimSpace(k)] = v
	}
	run, created, err := d.b.Trigger(r.Context(), job, req)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("triggered: run %d for %s", run.ID, run.Period)
	if !created {
		note = fmt.Sprintf("existing run %d for %s", run.ID, run.Period)
	}
	d.redirect(w, r, fmt.Sprintf("/runs/%d", run.ID), note)
	return nil
}

func (d *Dashboard) pause(w http.ResponseWriter, r *http.Request) error {
	job := r.PathValue("name")
	_, created, err := d.b.Pause(r.Context(), job, api.Caller(r.Context()), strings.TrimSpace(r.PostFormValue("reason")))
	if err != nil {
		return err
	}
	note := "paused"
	if !created {
		note = "already paused"
	}
	d.redirect(w, r, "/jobs/"+url.PathEscape(job), note)
	return nil
}

func (d *Dashboard) resume(w http.ResponseWriter, r *http.Request) error {
	job := r.PathValue("name")
	if _, err := d.b.Resume(r.Context(), job, api.Caller(r.Context())); err != nil {
		return err
	}
	d.redirect(w, r, "/jobs/"+url.PathEscape(job), "resumed")
	return nil
}

// loginData is the login page's.
type loginData struct {
	Next, Why string
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) error {
	next := localPath(r.URL.Query().Get("next"))
	if d.login == nil {
		// A server without auth: has no logins: everyone is let in.
		d.redirect(w, r, next, "")
		return nil
	}
	p := d.newPage(w, r, "Log in", loginData{Next: next, Why: r.URL.Query().Get("why")})
	return d.render(w, http.StatusOK, "login.html", p)
}

// loginPost checks the token with the server's auth chain and, when it
// names someone, keeps it in the session cookie.
func (d *Dashboard) loginPost(w http.ResponseWriter, r *http.Request) error {
	next := localPath(r.PostFormValue("next"))
	if d.login == nil {
		d.redirect(w, r, next, "")
		return nil
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	p, err := d.login.Authenticate(r.Context(), token)
	if err != nil {
		why := "token not known"
		switch {
		case errors.Is(err, auth.ErrUnknownToken):
		case errors.Is(err, auth.ErrRejected):
			why = err.Error()
		default:
			d.logger.Error("login: token not checked", "err", err)
			why = "the token cannot be checked now (the server's log says why); try again"
		}
		pg := d.newPage(w, r, "Log in", loginData{Next: next, Why: why})
		return d.render(w, http.StatusUnauthorized, "login.html", pg)
	}
	if p.Role == auth.RoleRun || p.Role == auth.RoleAgent {
		pg := d.newPage(w, r, "Log in", loginData{Next: next, Why: "a " + string(p.Role) + " token cannot log in to the dashboard: use a viewer, operator or admin token"})
		return d.render(w, http.StatusForbidden, "login.html", pg)
	}
	http.SetCookie(w, d.sessions.Cookie(api.SessionCookie, token, 0))
	d.redirect(w, r, next, "")
	return nil
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, d.sessions.Cookie(api.SessionCookie, "", -1))
	to := "/login"
	if d.login == nil {
		to = "/"
	}
	d.redirect(w, r, to, "")
	return nil
}
