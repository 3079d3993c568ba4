package main

import (
	"fmt"
	"net/netip"
	"strings"
)

// prefixList is a flag.Value of comma-separated CIDRs or bare IPs.
type prefixList []netip.Prefix

func (p *prefixList) String() string {
	if p == nil {
		return ""
	}
	s := make([]string, len(*p))
	for i, x := range *p {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

func (p *prefixList) Set(v string) error {
	var out prefixList
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if pr, err := netip.ParsePrefix(f); err == nil {
			out = append(out, pr.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR or IP address", f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	*p = out
	return nil
}

// Get implements flag.Getter.
func (p *prefixList) Get() any { return []netip.Prefix(*p) }

// stringList is a repeatable flag. Its default values are replaced (not
// extended) by the first value set.
type stringList struct {
	vals      []string
	isDefault bool
	split     func(string) []string
}

func newStringList(split func(string) []string, defaults ...string) stringList {
	return stringList{vals: defaults, isDefault: len(defaults) > 0, split: split}
}

func oneItem(s string) []string {
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	return []string{s}
}

func commaFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.vals, " ")
}

func (l *stringList) Set(v string) error {
	if l.isDefault {
		l.vals, l.isDefault = nil, false
	}
	split := l.split
	if split == nil {
		split = oneItem
	}
	l.vals = append(l.vals, split(v)...)
	return nil
}

// Get implements flag.Getter.
func (l *stringList) Get() any { return l.vals }
