package cache

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSaveLoadRemove(t *testing.T) {
	s := New(t.TempDir() + "/attachments")
	rec := &Record{ContainerID: "abc123", NetNS: "/run/netns/x", Attachments: []Attachment{
		{StatusName: "cbr0", IfName: "eth0", Conflist: []byte(`{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"bridge","ipam":{"type":"host-local","subnet":"203.0.113.0/24"}}]}`), Default: true},
		{StatusName: "ns/mv", IfName: "net1", Conflist: []byte(`{"cniVersion":"0.3.1","name":"mv","plugins":[{"type":"macvlan"}]}`)},
	}}
	if err := s.Save(rec); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Path("abc123"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
	}
	got, err := s.Load("abc123")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Attachments) != 2 || !strings.Contains(string(got.Attachments[0].Conflist), `"subnet":"203.0.113.0/24"`) {
		t.Fatalf("IPAM lost in the round trip: %+v", got.Attachments)
	}
	ids, _ := s.List()
	if len(ids) != 1 || ids[0] != "abc123" {
		t.Fatalf("List = %v", ids)
	}
	if err := s.Remove("abc123"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("abc123"); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if got, err := s.Load("abc123"); got != nil || err != nil {
		t.Fatalf("Load after Remove = %v, %v", got, err)
	}
}

func TestCorruptRecordNamesTheFile(t *testing.T) {
	s := New(t.TempDir())
	for name, content := range map[string]string{
		"truncated": `{"version":1,"containerID":"c1","attachments":[{"name"`,
		"empty":     ``,
		"wrongid":   `{"version":1,"containerID":"other","attachments":[{"name":"a","ifname":"eth0","conflist":{"name":"n","plugins":[{"type":"bridge"}]}}]}`,
		"noifname":  `{"version":1,"containerID":"c1","attachments":[{"name":"a","conflist":{"name":"n","plugins":[{"type":"bridge"}]}}]}`,
		"noconf":    `{"version":1,"containerID":"c1","attachments":[{"name":"a","ifname":"eth0","conflist":null}]}`,
		"nameless":  `{"version":1,"containerID":"c1","attachments":[{"name":"a","ifname":"eth0","conflist":{"plugins":[{"type":"bridge"}]}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(s.Path("c1"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := s.Load("c1")
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), s.Path("c1")) {
				t.Fatalf("err = %v, want ErrCorrupt naming %s", err, s.Path("c1"))
			}
			moved, err := s.Quarantine("c1")
			if err != nil || !strings.HasSuffix(moved, ".corrupt") {
				t.Fatalf("Quarantine = %q, %v", moved, err)
			}
			if got, err := s.Load("c1"); got != nil || err != nil {
				t.Fatalf("after quarantine Load = %v, %v", got, err)
			}
		})
	}
}

func TestRejectsPathTraversal(t *testing.T) {
	s := New(t.TempDir())
	for _, id := range []string{"../x", "a/b", "", "-x"} {
		if err := s.Save(&Record{ContainerID: id}); err == nil {
			t.Errorf("Save(%q) succeeded", id)
		}
		if _, err := s.Load(id); err == nil {
			t.Errorf("Load(%q) succeeded", id)
		}
	}
}

// ReplaceAtomic keeps the replaced file's mode, owner and group, and
// replaces the file a symbolic link points to, the link kept.
func TestReplaceAtomicKeepsModeOwnerAndLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "config")
	if err := os.WriteFile(target, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o640); err != nil {
		t.Fatal(err)
	}
	chowned := os.Chown(target, 65534, 65534) == nil // needs root
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceAtomic(link, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v", err)
	}
	got, err := os.ReadFile(target)
	if err != nil || string(got) != "new" {
		t.Fatalf("target holds %q (%v)", got, err)
	}
	fi, err := os.Stat(target)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v (%v), want 0640", fi.Mode(), err)
	}
	if st := fi.Sys().(*syscall.Stat_t); chowned && (st.Uid != 65534 || st.Gid != 65534) {
		t.Errorf("owner %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
}
