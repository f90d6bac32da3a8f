package podnet

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"

	"github.com/plexus-cni/plexus/internal/testbed"
)

const netlinkPath = "github.com/vishvananda/netlink"

// dumpCalls are the netlink functions that netlinksafe wraps (a dump the
// kernel interrupts is retried there, an error or a partial answer here),
// each with its wrapper: the build fails if one goes away.
var dumpCalls = map[string]any{
	"AddrList": netlinksafe.AddrList, "LinkByName": netlinksafe.LinkByName, "LinkList": netlinksafe.LinkList,
	"RouteList": netlinksafe.RouteList, "RouteListFiltered": netlinksafe.RouteListFiltered,
	"BridgeVlanList": netlinksafe.BridgeVlanList, "QdiscList": netlinksafe.QdiscList,
	"LinkGetProtinfo": netlinksafe.LinkGetProtinfo, "RuleList": netlinksafe.RuleList,
	"RuleListFiltered": netlinksafe.RuleListFiltered, "FilterList": netlinksafe.FilterList,
	"ConntrackDeleteFilters": netlinksafe.ConntrackDeleteFilters,
}

// rawDumpCalls returns the calls of dumpCalls made through the netlink
// package (under whatever name the file imports it) in one file's source.
func rawDumpCalls(fset *token.FileSet, name string, src any) ([]string, error) {
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	pkgName := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == netlinkPath {
			pkgName = "netlink"
			if imp.Name != nil {
				pkgName = imp.Name.Name
			}
		}
	}
	if pkgName == "" {
		return nil, nil
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == pkgName && dumpCalls[sel.Sel.Name] != nil {
			found = append(found, fset.Position(sel.Pos()).String()+": "+pkgName+"."+sel.Sel.Name)
		}
		return true
	})
	return found, nil
}

// The scanner finds raw calls under the package's name and under an alias.
func TestRawDumpCallsAreFound(t *testing.T) {
	src := `package x
import (
	nl "github.com/vishvananda/netlink"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
)
func f() {
	nl.RouteList(nil, 0)
	l, _ := nl.LinkByName("eth0")
	nl.LinkSetUp(l)
	netlinksafe.AddrList(l, 0)
	list := nl.LinkList
	_ = list
}`
	got, err := rawDumpCalls(token.NewFileSet(), "x.go", src)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"x.go:7:2: nl.RouteList", "x.go:8:10: nl.LinkByName", "x.go:11:10: nl.LinkList"}
	if !slices.Equal(got, want) {
		t.Errorf("found %q, want %q", got, want)
	}
}

// No Go file of the module calls a netlink dump directly: netlinksafe's
// wrappers are the only way in.
func TestNoRawNetlinkDumps(t *testing.T) {
	root := testbed.Root()
	if root == "" {
		t.Fatal("repository root not found")
	}
	fset := token.NewFileSet()
	var found []string
	scanned := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "vendor" || isModule(path)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		scanned++
		calls, err := rawDumpCalls(fset, path, nil)
		found = append(found, calls...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned == 0 {
		t.Fatalf("no Go file under %s", root)
	}
	for _, c := range found {
		t.Errorf("%s: use netlinksafe.%s", c, c[strings.LastIndex(c, ".")+1:])
	}
}

// isModule reports whether dir holds another module (hack/tools).
func isModule(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "go.mod"))
	return err == nil
}
