package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want Level
		slog slog.Level
	}{
		{"", Error, slog.LevelError},
		{"debug", Debug, slog.LevelDebug},
		{"verbose", Verbose, slog.LevelInfo},
		{"info", Verbose, slog.LevelInfo},
		{"INFO", Verbose, slog.LevelInfo},
		{"warn", Warning, slog.LevelWarn},
		{"warning", Warning, slog.LevelWarn},
		{"error", Error, slog.LevelError},
		{"Panic", Panic, slog.LevelError + 4},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if err != nil || got != tt.want || got.Slog() != tt.slog {
			t.Errorf("ParseLevel(%q) = %v (slog %v), %v; want %v (slog %v)", tt.in, got, got.Slog(), err, tt.want, tt.slog)
		}
	}
	for _, name := range LevelNames() {
		tested := false
		for _, tt := range tests {
			tested = tested || strings.EqualFold(tt.in, name)
		}
		if !tested {
			t.Errorf("level name %q has no case above", name)
		}
	}
	_, err := ParseLevel("loud")
	if err == nil || err.Error() != `unknown log level "loud": want one of debug, verbose, info, warn, warning, error, panic` {
		t.Errorf("ParseLevel(loud) error = %v", err)
	}
}

func TestLevelFilters(t *testing.T) {
	var b bytes.Buffer
	l := New(Options{Level: Warning, Stderr: &b})
	l.Debugf("d")
	l.Infof("i")
	l.Errorf("e")
	if out := b.String(); strings.Contains(out, "[debug]") || strings.Contains(out, "[verbose]") || !strings.Contains(out, "[error] e") {
		t.Errorf("at warning level logged %q, want the error line only", out)
	}
}
