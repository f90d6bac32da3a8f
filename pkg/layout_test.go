// Package pkg_test checks the layout rule (docs/architecture.md): nothing
// in pkg/ imports internal/, so every package there can be imported by
// other projects.
package pkg_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const internal = "github.com/plexus-cni/plexus/internal"

// testOnlyInternal is the internal package tests under pkg/ may use: the
// test bed, which importers never compile.
const testOnlyInternal = internal + "/testbed"

// The package's own code imports nothing of internal/ (so neither does
// anything it depends on: only pkg/ and other modules are left), its tests
// nothing but the test bed. Every file counts, whatever its build tags.
func TestPkgDoesNotImportInternal(t *testing.T) {
	fset := token.NewFileSet()
	scanned := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		scanned[filepath.ToSlash(path)] = true
		isTest := strings.HasSuffix(path, "_test.go")
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p != internal && !strings.HasPrefix(p, internal+"/") {
				continue
			}
			if !isTest {
				t.Errorf("pkg/%s imports %s: nothing in pkg/ may import internal/", path, p)
			} else if p != testOnlyInternal && !strings.HasPrefix(p, testOnlyInternal+"/") {
				t.Errorf("pkg/%s imports %s: tests in pkg/ may use only %s of internal/", path, p, testOnlyInternal)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ipam/plugin/plugin.go", "netselect/parse.go", "ipam/store/kubestore/kubestore.go"} {
		if !scanned[want] {
			t.Errorf("pkg/%s was not scanned", want)
		}
	}
}
