// Package cache keeps, per sandbox, the complete delegate configurations a
// CNI ADD planned, so that DEL and CHECK work without the API server, after
// the pod or its NetworkAttachmentDefinitions are gone. Records are written
// atomically (temporary file, fsync, rename) with mode 0600, before any
// delegate runs, and removed only after a successful DEL.
package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"syscall"

	"github.com/containernetworking/cni/libcni"
)

// FormatVersion is the version of the record layout.
const FormatVersion = 1

// Record is everything needed to tear down or check one sandbox's attachments.
type Record struct {
	Version     int          `json:"version"`
	ContainerID string       `json:"containerID"`
	NetNS       string       `json:"netns,omitempty"`
	PodNS       string       `json:"podNamespace,omitempty"`
	PodName     string       `json:"podName,omitempty"`
	PodUID      string       `json:"podUID,omitempty"`
	Args        [][2]string  `json:"cniArgs,omitempty"`
	Attachments []Attachment `json:"attachments"`
	// Config, IfName and CNIPath are the ADD's stdin, CNI_IFNAME and
	// CNI_PATH: with them plexusd attaches networks to the running
	// sandbox (hot-plug) as that ADD would have.
	Config  json.RawMessage `json:"config,omitempty"`
	IfName  string          `json:"ifname,omitempty"`
	CNIPath string          `json:"cniPath,omitempty"`
}

// Attachment is one delegate of the sandbox.
type Attachment struct {
	StatusName     string          `json:"name"`
	IfName         string          `json:"ifname"`
	Conflist       json.RawMessage `json:"conflist"`
	CapabilityArgs map[string]any  `json:"capabilityArgs,omitempty"`
	Default        bool            `json:"default,omitempty"`
	// DeviceID is the device of a network with a resourceName.
	DeviceID string `json:"deviceID,omitempty"`
	// DeviceInfoFile is the attachment's device-info file, removed by DEL.
	DeviceInfoFile string `json:"deviceInfoFile,omitempty"`
	// Selection is the identity of the annotation entry that asked for
	// the attachment (plan.SelectionKey); "" for configured networks.
	Selection string `json:"selection,omitempty"`
	// Pending marks an attachment a hot-plug is adding: until it is done,
	// a restarted plexusd deletes it again before anything else.
	Pending bool `json:"pending,omitempty"`
	// Status holds the attachment's network-status entries once a hot-plug
	// has rebuilt the pod's network-status from the record.
	Status json.RawMessage `json:"status,omitempty"`
}

// Store reads and writes records under one directory.
type Store struct {
	dir string
}

// New returns a Store keeping records in dir (created 0700 on first write).
func New(dir string) *Store { return &Store{dir: dir} }

// ErrCorrupt is wrapped when a record exists but cannot be decoded.
var ErrCorrupt = errors.New("corrupt attachment cache")

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]*$`)

// Path returns the file that holds containerID's record.
func (s *Store) Path(containerID string) string {
	return filepath.Join(s.dir, containerID+".json")
}

// ErrInvalidID is wrapped when a container ID is not one CNI allows.
var ErrInvalidID = errors.New("not a valid CNI container ID")

func (s *Store) checkID(containerID string) error {
	if !validID.MatchString(containerID) {
		return fmt.Errorf("CNI_CONTAINERID %q: %w", containerID, ErrInvalidID)
	}
	return nil
}

// Save writes r atomically.
func (s *Store) Save(r *Record) error {
	if err := s.checkID(r.ContainerID); err != nil {
		return err
	}
	data, err := Encode(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("create attachment cache dir %s: %w", s.dir, err)
	}
	if err := WriteAtomic(s.Path(r.ContainerID), data, 0o600); err != nil {
		return fmt.Errorf("write attachment cache: %w", err)
	}
	return nil
}

// Load returns the record of containerID; (nil, nil) when there is none; an
// error wrapping ErrCorrupt that names the file when it cannot be decoded.
func (s *Store) Load(containerID string) (*Record, error) {
	if err := s.checkID(containerID); err != nil {
		return nil, err
	}
	path := s.Path(containerID)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read attachment cache %s: %w", path, err)
	}
	r, err := Decode(data, containerID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Encode returns the stored form of r (what Save writes), setting its
// Version.
func Encode(r *Record) ([]byte, error) {
	r.Version = FormatVersion
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode attachment cache for %s: %w", r.ContainerID, err)
	}
	return data, nil
}

// Same reports whether a and b encode alike: Save of one after the other
// would write the same file.
func Same(a, b *Record) bool {
	x, errX := Encode(a)
	y, errY := Encode(b)
	return errX == nil && errY == nil && bytes.Equal(x, y)
}

// Decode parses the stored record of containerID. A record that is not
// one Save could have written for containerID, or that has an attachment
// DEL could not run, is an error wrapping ErrCorrupt: DEL then moves it
// aside instead of failing on it for ever.
func Decode(data []byte, containerID string) (*Record, error) {
	r := &Record{}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if r.Version != FormatVersion || r.ContainerID != containerID || len(r.Attachments) == 0 {
		return nil, fmt.Errorf("%w: version %d, container %q, %d attachments",
			ErrCorrupt, r.Version, r.ContainerID, len(r.Attachments))
	}
	for i, a := range r.Attachments {
		if err := a.check(); err != nil {
			return nil, fmt.Errorf("%w: attachments[%d]: %v", ErrCorrupt, i, err)
		}
	}
	return r, nil
}

// check reports an attachment DEL could not run: every delegate needs an
// interface name and a configuration list libcni accepts.
func (a *Attachment) check() error {
	if a.IfName == "" {
		return errors.New("ifname: is required")
	}
	if _, err := libcni.ConfListFromBytes(a.Conflist); err != nil {
		return fmt.Errorf("conflist of %s: %w", a.IfName, err)
	}
	return nil
}

// Remove deletes containerID's record; a missing record is not an error.
func (s *Store) Remove(containerID string) error {
	if err := s.checkID(containerID); err != nil {
		return err
	}
	if err := os.Remove(s.Path(containerID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove attachment cache: %w", err)
	}
	return nil
}

// Quarantine renames a corrupt record aside (to <file>.corrupt) so that the
// next DEL falls back to what the API and the configuration say, and returns
// the new path.
func (s *Store) Quarantine(containerID string) (string, error) {
	from := s.Path(containerID)
	to := from + ".corrupt"
	if err := os.Rename(from, to); err != nil {
		return "", fmt.Errorf("move corrupt attachment cache aside: %w", err)
	}
	return to, nil
}

// List returns the container IDs that have a record.
func (s *Store) List() ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(s.dir, "*.json"))
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(matches))
	for _, m := range matches {
		ids = append(ids, filepath.Base(m[:len(m)-len(".json")]))
	}
	return ids, nil
}

// WriteAtomic replaces path with data, mode perm, through a temporary file
// in the same directory (a dot name), so that a reader never sees half a
// file and a crash leaves the old one.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, data, func(tmp *os.File) error { return tmp.Chmod(perm) })
}

// ReplaceAtomic is WriteAtomic for a file that exists: the new one keeps
// its mode, owner and group, and a symbolic link to it stays a link (the
// file it points to is replaced).
func ReplaceAtomic(path string, data []byte) error {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	old, err := os.Stat(target)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return writeAtomic(target, data, func(tmp *os.File) error {
		if err := tmp.Chmod(old.Mode().Perm()); err != nil {
			return err
		}
		return chownLike(tmp, old)
	})
}

// writeAtomic writes data to a temporary file beside path, lets prepare set
// its mode (and owner), and renames it over path.
func writeAtomic(path string, data []byte, prepare func(tmp *os.File) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	err = errors.Join(prepare(tmp), write(tmp, data), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// chownLike gives f the owner and group of old, if they differ.
func chownLike(f *os.File, old fs.FileInfo) error {
	want, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if got, ok := st.Sys().(*syscall.Stat_t); ok && got.Uid == want.Uid && got.Gid == want.Gid {
		return nil
	}
	return f.Chown(int(want.Uid), int(want.Gid))
}

func write(f *os.File, data []byte) error {
	_, err := f.Write(data)
	return err
}

// DeviceInfoFiles lists the device-info files of the record's attachments.
func (r *Record) DeviceInfoFiles() []string {
	var out []string
	for _, a := range r.Attachments {
		if a.DeviceInfoFile != "" {
			out = append(out, a.DeviceInfoFile)
		}
	}
	return out
}
