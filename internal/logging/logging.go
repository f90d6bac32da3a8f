// Package logging is the plugin's small levelled logger. CNI plugins are
// short-lived processes whose stderr lands in the runtime's log, so it
// writes plain lines to stderr and/or an append-only file, and never prints
// configuration contents (kubeconfigs and tokens stay out of logs).
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Level orders messages by importance.
type Level int

// Levels, from the most to the least verbose.
const (
	Debug Level = iota
	Verbose
	Warning
	Error
	Panic
)

// levelNames are the names every plexus binary accepts for a log level
// (case-insensitive): Multus's and Whereabouts' debug, verbose, error and
// panic, and info, warn and warning as Kubernetes components spell them.
var levelNames = []struct {
	name  string
	level Level
}{
	{"debug", Debug}, {"verbose", Verbose}, {"info", Verbose}, {"warn", Warning},
	{"warning", Warning}, {"error", Error}, {"panic", Panic},
}

// LevelNames lists the accepted names, for help texts and messages.
func LevelNames() []string {
	out := make([]string, len(levelNames))
	for i, n := range levelNames {
		out[i] = n.name
	}
	return out
}

// ParseLevel maps a level name to a Level; "" is Error, the default of
// Multus and Whereabouts. An unknown name is an error listing the names.
func ParseLevel(s string) (Level, error) {
	if s == "" {
		return Error, nil
	}
	for _, n := range levelNames {
		if strings.EqualFold(s, n.name) {
			return n.level, nil
		}
	}
	return Error, fmt.Errorf("unknown log level %q: want one of %s", s, strings.Join(LevelNames(), ", "))
}

// Slog is the log/slog level of l (Panic logs nothing below it).
func (l Level) Slog() slog.Level {
	switch l {
	case Debug:
		return slog.LevelDebug
	case Verbose:
		return slog.LevelInfo
	case Warning:
		return slog.LevelWarn
	case Error:
		return slog.LevelError
	}
	return slog.LevelError + 4
}

// Logger writes levelled lines with a fixed prefix.
type Logger struct {
	mu     sync.Mutex
	out    []io.Writer
	level  Level
	prefix string
	closer io.Closer
}

// Options choose where and what to log.
type Options struct {
	Level    Level
	File     string    // append to this file when set
	Stderr   io.Writer // also write here when non-nil
	Prefix   string
	FileMode os.FileMode
}

// New opens the log. A file that cannot be opened is reported on Stderr
// (when set) and skipped: logging must never fail a CNI request.
func New(o Options) *Logger {
	l := &Logger{level: o.Level, prefix: o.Prefix}
	if o.Stderr != nil {
		l.out = append(l.out, o.Stderr)
	}
	if o.File != "" {
		mode := o.FileMode
		if mode == 0 {
			mode = 0o600
		}
		f, err := os.OpenFile(o.File, os.O_CREATE|os.O_APPEND|os.O_WRONLY, mode)
		if err != nil && o.Stderr != nil {
			fmt.Fprintf(o.Stderr, "plexus: cannot open logFile %s: %v\n", o.File, err)
		}
		if err == nil {
			l.out = append(l.out, f)
			l.closer = f
		}
	}
	return l
}

// Discard returns a Logger that writes nothing.
func Discard() *Logger { return &Logger{level: Panic + 1} }

// Close closes the log file, if any.
func (l *Logger) Close() error {
	if l == nil || l.closer == nil {
		return nil
	}
	return l.closer.Close()
}

func (l *Logger) log(lv Level, tag, format string, args ...any) {
	if l == nil || lv < l.level || len(l.out) == 0 {
		return
	}
	line := fmt.Sprintf("%s [%s] %s%s\n", time.Now().UTC().Format(time.RFC3339Nano), tag, l.prefix, fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.out {
		_, _ = io.WriteString(w, line)
	}
}

// Debugf logs at debug level.
func (l *Logger) Debugf(format string, args ...any) { l.log(Debug, "debug", format, args...) }

// Infof logs at verbose level.
func (l *Logger) Infof(format string, args ...any) { l.log(Verbose, "verbose", format, args...) }

// Errorf logs at error level.
func (l *Logger) Errorf(format string, args ...any) { l.log(Error, "error", format, args...) }
