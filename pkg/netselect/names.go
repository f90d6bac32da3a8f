package netselect

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	dns1123LabelMax     = 63
	dns1123SubdomainMax = 253
	ifNameMax           = 15
)

var (
	dns1123LabelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123SubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// checkLabel returns why s is not a DNS-1123 label (namespace names), or "".
func checkLabel(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > dns1123LabelMax:
		return "must be at most 63 characters"
	case !dns1123LabelRE.MatchString(s):
		return "must be a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)"
	}
	return ""
}

// checkSubdomain returns why s is not a DNS-1123 subdomain (object names),
// or "".
func checkSubdomain(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > dns1123SubdomainMax:
		return "must be at most 253 characters"
	case !dns1123SubdomainRE.MatchString(s):
		return "must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)"
	}
	return ""
}

// CheckInterfaceName returns why name is not a usable Linux interface name
// (the kernel's and libcni's rules), or "" when it is.
func CheckInterfaceName(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > ifNameMax:
		return "must be at most 15 bytes"
	case name == "." || name == "..":
		return "must not be \".\" or \"..\""
	case strings.ContainsAny(name, "/:\x00"):
		return "must not contain '/', ':' or NUL"
	case strings.ContainsAny(name, " \t\n\v\f\r"):
		return "must not contain whitespace"
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return "must be valid UTF-8 without control characters"
	}
	return ""
}
