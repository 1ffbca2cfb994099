package ssh

import (
	"fmt"
	"strconv"
	"strings"
)

// bootCommand is the command line every session runs. The login shell of
// the remote user parses it, so it is one line of plain words and single
// quotes that sh, bash, dash, zsh, ksh and fish read alike. It reads the
// real script from stdin with the read builtin, which takes one byte at a
// time from a pipe, so nothing after the script is consumed: the control
// lines that follow (renew, ack) reach the script's own reader. The
// script and the run's data never appear in a command line, where every
// user of the host could read them (ps).
const bootCommand = `exec /bin/sh -c 'nl=$(printf "\n_"); nl=${nl%_}; IFS= read -r n || exit 97; s=; while [ "$n" -gt 0 ]; do IFS= read -r l || exit 97; s=$s$l$nl; n=$((n-1)); done; eval "$s"' talon-ssh`

// wrapperScript is the remote side of a run, in POSIX sh with three
// tools Linux hosts have (setsid from util-linux; GNU tail's --pid;
// /proc/uptime). Its functions are the entry points the data that follows
// it calls: main_start, main_attach and main_cancel. It talks to the
// scheduler on stderr, in lines starting with \001talon; stdout carries
// the job's output alone.
//
// A run lives in $HOME/.talon/runs/RUN, RUN being the run's id and a
// nonce: out (the job's stdout and stderr), pid (the job's pid, which is
// also its process group and session id), lease (the deadline, in
// centiseconds of /proc/uptime), ack (how much of out the scheduler has
// logged), status ("RC WHY", written once the job and everything in its
// process group are gone), wrapper.sh (this script, run by the
// supervisor).
//
// The supervisor (supervise) is a process of its own session, so it
// outlives the ssh session and is no child of sshd: a dropped connection
// or a dead scheduler leaves the job running until its lease lapses, for
// a scheduler to re-attach to. It starts the job with setsid (its own
// session and process group), waits for it, then stops what the job left
// in its group (SIGTERM, SIGKILL after the grace) and records the status.
// Its watchdog kills the job's group when the lease lapses.
//
// The session that started the run (and one that re-attaches) streams out
// from an offset with tail --pid=SUPERVISOR, which reads to the end of
// the file once the supervisor has exited, so no output is lost, and reads
// the scheduler's control lines: "renew CS" moves the lease to CS
// centiseconds from now, "ack N" records that the first N bytes of out are
// in the run's log.
const wrapperScript = `# Talon's ssh executor wrapper (internal/executor/ssh); see remote.go.
base=$HOME/.talon/runs
ctl() { printf '\001talon %s\n' "$*" >&2; }
now_cs() { read -r up _ </proc/uptime; now=$(( ${up%.*} * 100 + 1${up#*.} - 100 )); }
setlease() { now_cs; printf '%s\n' "$((now + $1))" >"$d/lease"; }
stop() {
  kill -TERM "-$1" 2>/dev/null || return 0
  i=0
  while kill -0 "-$1" 2>/dev/null; do
    if [ "$i" -ge "$2" ]; then kill -KILL "-$1" 2>/dev/null; return 0; fi
    sleep 0.1; i=$((i + 10))
  done
}
watchdog() {
  while :; do
    now_cs; dl=
    read -r dl <"$d/lease" 2>/dev/null
    case $dl in
    ''|*[!0-9]*) ;;
    *) if [ "$now" -ge "$dl" ]; then : >"$d/fenced"; stop "$1" "$grace"; return 0; fi;;
    esac
    sleep 1
  done
}
supervise() {
  d=$1; grace=$2; jobdir=$3; shift 3
  exec 3<>"$d/ready"
  if [ -n "$jobdir" ] && ! cd "$jobdir" 2>/dev/null; then echo nodir >&3; exit 0; fi
  if ! command -v "$1" >/dev/null 2>&1; then echo notfound >&3; exit 0; fi
  setsid "$@" </dev/null >>"$d/out" 2>&1 3>&- &
  j=$!
  printf '%s\n' "$j" >"$d/pid"
  echo "started $j" >&3
  exec 3>&-
  watchdog "$j" </dev/null >/dev/null 2>&1 &
  wd=$!
  wait "$j"; rc=$?
  kill "$wd" 2>/dev/null
  stop "$j" "$grace"
  why=exited
  [ -e "$d/fenced" ] && why=fenced
  [ -e "$d/cancel" ] && why=cancelled
  printf '%s %s\n' "$rc" "$why" >"$d/status.new" && mv -f "$d/status.new" "$d/status"
}
reader() {
  while IFS=' ' read -r c a; do
    case $c in
    renew) case $a in ''|*[!0-9]*) ;; *) setlease "$a"; ctl renewed;; esac;;
    ack) case $a in ''|*[!0-9]*) ;; *) printf '%s\n' "$a" >"$d/ack";; esac;;
    esac
  done
}
alive() { [ -n "$1" ] && grep -qaF "$d/wrapper.sh" "/proc/$1/cmdline" 2>/dev/null; }
watch() {
  # An asynchronous list's stdin is /dev/null: hand it the session's.
  exec 5<&0
  reader <&5 >/dev/null 5<&- &
  r=$!
  exec 5<&-
  tail -s 0.1 -c "+$(($2 + 1))" --pid="$1" -f "$d/out" 2>/dev/null
  kill "$r" 2>/dev/null
  st=
  read -r st <"$d/status" 2>/dev/null
  if [ -n "$st" ]; then ctl "status $st"; return 0; fi
  if alive "$1"; then return 0; fi
  stop "$3" "$grace"
  ctl "lost its wrapper (pid $1) ended without recording the job's end"
}
main_start() {
  umask 077
  mkdir -p "$base" 2>/dev/null || { ctl "error cannot create $base"; exit 0; }
  d=$base/$run
  mkdir "$d" 2>/dev/null || { ctl "error cannot create $d"; exit 0; }
  (find "$base" -mindepth 1 -maxdepth 1 -type d -mtime +7 -exec rm -rf {} + ) </dev/null >/dev/null 2>&1 &
  command -v setsid >/dev/null 2>&1 || { ctl "error setsid not found on this host (util-linux)"; rm -rf "$d"; exit 0; }
  : >"$d/out"
  mkfifo "$d/ready" || { ctl "error cannot create $d/ready"; rm -rf "$d"; exit 0; }
  printf '%s\nsupervise "$@"\n' "$script" >"$d/wrapper.sh"
  setlease "$lease"
  exec 4<>"$d/ready"
  setsid /bin/sh "$d/wrapper.sh" "$d" "$grace" "$jobdir" "$@" </dev/null >/dev/null 2>&1 4<&- &
  w=$!
  printf '%s\n' "$w" >"$d/wpid"
  IFS=' ' read -r what j <&4
  exec 4<&-
  case $what in
  started) ctl "started $j $w"; watch "$w" 0 "$j";;
  *) ctl "$what"; rm -rf "$d";;
  esac
}
main_attach() {
  d=$base/$run
  [ -d "$d" ] || { ctl "lost its run directory $d is gone"; exit 0; }
  # A located run: its pids are in its directory.
  [ -n "$w" ] || read -r w <"$d/wpid" 2>/dev/null
  [ -n "$j" ] || read -r j <"$d/pid" 2>/dev/null
  [ -n "$w" ] || { ctl "lost its scheduler died before its wrapper started"; exit 0; }
  if [ -z "$off" ]; then
    off=0; read -r off <"$d/ack" 2>/dev/null
    case $off in ''|*[!0-9]*) off=0;; esac
  fi
  if [ ! -e "$d/status" ]; then
    if ! alive "$w"; then
      [ -n "$j" ] && stop "$j" "$grace"
      ctl "lost its wrapper (pid $w) is gone and recorded no end"
      exit 0
    fi
    setlease "$lease"
  fi
  ctl "attached $off $j $w"
  watch "$w" "$off" "$j"
}
main_cancel() {
  d=$base/$run
  if [ -e "$d/status" ]; then ctl done; exit 0; fi
  : >"$d/cancel"
  stop "$j" "$grace"
  ctl done
}
`

// quote is s as one word of a POSIX shell, whatever it holds: in single
// quotes, in which nothing is special, with each single quote written as
// '\”.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// validName reports whether s can name a shell variable.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// payload is what a session sends on stdin after bootCommand: the number
// of lines, then the wrapper script and the data that calls an entry
// point. vars are shell variables set for the entry point (values
// quoted), env the KEY=VALUE entries to export, argv the positional
// parameters.
func payload(entry string, vars [][2]string, env []string, argv []string) (string, error) {
	var b strings.Builder
	b.WriteString("script=" + quote(wrapperScript) + "\n")
	b.WriteString("eval \"$script\"\n")
	for _, v := range vars {
		b.WriteString(v[0] + "=" + quote(v[1]) + "\n")
	}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !validName(k) {
			return "", fmt.Errorf("environment variable %q cannot be passed over ssh (want letters, digits and _)", k)
		}
		b.WriteString("export " + k + "=" + quote(v) + "\n")
	}
	b.WriteString("set --")
	for _, a := range argv {
		b.WriteString(" " + quote(a))
	}
	b.WriteString("\n" + entry + " \"$@\"\n")
	s := b.String()
	return strconv.Itoa(strings.Count(s, "\n")) + "\n" + s, nil
}

// centis is d in whole centiseconds, as the wrapper counts time.
func centis(secs float64) string {
	return strconv.FormatInt(int64(secs*100), 10)
}
