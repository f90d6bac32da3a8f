package cniargs

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := Parse("IgnoreUnknown=1;;K8S_POD_NAME=p; IP=192.0.2.9,198.51.100.9;A=b=c")
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "p"}, {"IP", "192.0.2.9,198.51.100.9"}, {"A", "b=c"}}
	if !slices.Equal(got, want) {
		t.Fatalf("Parse = %v, want %v", got, want)
	}
	for _, bad := range []string{"K8S_POD_NAME", "=v", "a=1;oops"} {
		_, err := Parse(bad)
		if err == nil || !strings.Contains(err.Error(), "CNI_ARGS") {
			t.Errorf("Parse(%q) = %v, want an error naming CNI_ARGS", bad, err)
		}
	}
	if got, err := Parse(""); got != nil || err != nil {
		t.Errorf("Parse(\"\") = %v, %v", got, err)
	}
}
