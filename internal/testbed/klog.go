package testbed

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/klog/v2"
)

// QuietKlog sends client-go's own log lines (reflectors' notes, requests
// cut short when a suite stops the API server) to dir/klog.log instead of
// a suite's table on stdout, until the test ends.
func QuietKlog(t testing.TB, dir string) {
	f, err := os.OpenFile(filepath.Join(dir, "klog.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("klog log: %v", err)
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		if err := fs.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	klog.SetOutput(f)
	t.Cleanup(func() { klog.Flush(); f.Close() })
}
