package alloc

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// space is the transcript state: ranges sharing one set of used addresses,
// as the ranges of one address space do.
type space struct {
	ranges []*Range
	used   *Set
}

// TestTranscripts runs testdata/*.txt. Commands:
//
//	range subnet=P [first=A] [last=A] [gateway=A] [exclude=P,P]  add a range
//	alloc [r=I] [n=N] [skip=K]   allocate N addresses from range I
//	release A                     free an address
//	check [r=I] A                 may A be requested from range I?
//	fill [r=I] from=A to=A        mark [from, to] used (bulk)
//	index                         show the used set and its encoded size
func TestTranscripts(t *testing.T) {
	runTranscripts(t, "*.txt", func() *space { return &space{used: &Set{}} }, handleStep)
}

func handleStep(t *testing.T, sp *space, s step) string {
	args := kv(s.args)
	switch s.cmd {
	case "range":
		return sp.addRange(args)
	case "alloc":
		return sp.alloc(t, args)
	case "release":
		if sp.used.Remove(NumOf(netip.MustParseAddr(args[""]))) {
			return "released " + args[""]
		}
		return args[""] + " was not allocated"
	case "check":
		if err := sp.rangeArg(t, args).Check(netip.MustParseAddr(args[""])); err != nil {
			return err.Error()
		}
		return "ok"
	case "fill":
		sp.used.AddRun(NumOf(netip.MustParseAddr(args["from"])), NumOf(netip.MustParseAddr(args["to"])))
		return fmt.Sprintf("used %d", sp.used.Count())
	case "index":
		return sp.index(t)
	}
	t.Fatalf("line %d: unknown command %q", s.line, s.cmd)
	return ""
}

func (sp *space) addRange(args map[string]string) string {
	parse := func(k string) netip.Addr {
		if args[k] == "" {
			return netip.Addr{}
		}
		return netip.MustParseAddr(args[k])
	}
	var ex []netip.Prefix
	for _, e := range strings.Split(args["exclude"], ",") {
		if e != "" {
			ex = append(ex, netip.MustParsePrefix(e))
		}
	}
	r, err := NewRange(netip.MustParsePrefix(args["subnet"]), parse("first"), parse("last"), parse("gateway"), ex)
	if err != nil {
		return "error: " + err.Error()
	}
	sp.ranges = append(sp.ranges, r)
	return fmt.Sprintf("r%d: %s-%s in %s, %d usable", len(sp.ranges)-1, r.First, r.Last, r.Subnet, r.Size())
}

func (sp *space) rangeArg(t *testing.T, args map[string]string) *Range {
	i, _ := strconv.Atoi(args["r"])
	if i >= len(sp.ranges) {
		t.Fatalf("range r%d not defined", i)
	}
	return sp.ranges[i]
}

func (sp *space) alloc(t *testing.T, args map[string]string) string {
	r := sp.rangeArg(t, args)
	n, skip := 1, 0
	if args["n"] != "" {
		n, _ = strconv.Atoi(args["n"])
	}
	if args["skip"] != "" {
		skip, _ = strconv.Atoi(args["skip"])
	}
	var out []string
	for i := 0; i < n; i++ {
		c, ok := r.Pick(sp.used, skip)
		if !ok {
			out = append(out, "exhausted")
			break
		}
		if !sp.used.Add(c) {
			t.Fatalf("Pick returned %s, which is already used", c.Addr())
		}
		out = append(out, r.Prefix(c.Addr()).String())
	}
	return strings.Join(out, "\n")
}

func (sp *space) index(t *testing.T) string {
	b, err := sp.used.MarshalBinary()
	if err != nil {
		t.Fatalf("encoding: %v", err)
	}
	var back Set
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	var out []string
	for _, r := range back.Runs() {
		out = append(out, fmt.Sprintf("%s-%s", r.Lo.Addr(), r.Hi.Addr()))
	}
	if fmt.Sprint(back.Runs()) != fmt.Sprint(sp.used.Runs()) {
		t.Errorf("decoded runs %v, want %v", back.Runs(), sp.used.Runs())
	}
	out = append(out, fmt.Sprintf("%d runs, %d addresses, %d bytes", len(back.Runs()), back.Count(), len(b)))
	return strings.Join(out, "\n")
}
