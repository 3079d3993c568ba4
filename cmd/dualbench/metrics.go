package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// metricSample is one series of a Prometheus text exposition.
type metricSample struct {
	Name   string // metric name, e.g. dualgate_bytes_replayed_total
	Labels string // the label set as written, without braces; "" if none
	Value  float64
}

// metrics is a parsed scrape.
type metrics []metricSample

// sum returns the sum of every series of metric name (any labels) and
// whether there was one.
func (m metrics) sum(name string) (float64, bool) {
	var s float64
	found := false
	for _, x := range m {
		if x.Name == name {
			s += x.Value
			found = true
		}
	}
	return s, found
}

// sumMatching returns the sum of every series whose name contains all of
// the given substrings, and the names that matched (deduplicated). It lets
// dualbench find "bytes replayed" without knowing the exact metric name of a
// gateway version.
func (m metrics) sumMatching(subs ...string) (float64, []string) {
	var s float64
	var names []string
	seen := map[string]bool{}
outer:
	for _, x := range m {
		for _, sub := range subs {
			if !strings.Contains(x.Name, sub) {
				continue outer
			}
		}
		s += x.Value
		if !seen[x.Name] {
			seen[x.Name] = true
			names = append(names, x.Name)
		}
	}
	return s, names
}

// maxMetricsBody bounds a scrape.
const maxMetricsBody = 16 << 20

// scrapeMetrics fetches and parses http://addr/metrics.
func scrapeMetrics(ctx context.Context, client *http.Client, addr string) (metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("dualbench: metrics: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("dualbench: metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetricsBody))
	if err != nil {
		return nil, fmt.Errorf("dualbench: metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("dualbench: metrics: HTTP %s", resp.Status)
	}
	return parseMetrics(body)
}

// parseMetrics parses the Prometheus text exposition format (version 0.0.4):
// comment lines are skipped, every other non-empty line is
// `name[{labels}] value [timestamp]`. Label values may contain spaces,
// braces and escaped quotes.
func parseMetrics(b []byte) (metrics, error) {
	var out metrics
	n := 0
	for line := range bytes.Lines(b) {
		n++
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		s, err := parseMetricLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("dualbench: metrics line %d: %w", n, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// parseMetricLine parses one sample line.
func parseMetricLine(line string) (metricSample, error) {
	var s metricSample
	i := strings.IndexAny(line, "{ \t")
	if i <= 0 {
		return s, fmt.Errorf("no value in %q", line)
	}
	s.Name = line[:i]
	for _, r := range s.Name {
		if !(r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return s, fmt.Errorf("bad metric name %q", s.Name)
		}
	}
	rest := line[i:]
	if rest[0] == '{' {
		end, err := labelsEnd(rest)
		if err != nil {
			return s, err
		}
		s.Labels = rest[1:end]
		rest = rest[end+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 1 || len(f) > 2 {
		return s, fmt.Errorf("want value [timestamp] after %q", s.Name)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, fmt.Errorf("bad value of %s: %w", s.Name, err)
	}
	if math.IsNaN(v) {
		v = 0
	}
	s.Value = v
	return s, nil
}

// labelsEnd returns the index of the '}' closing the label set that starts
// at s[0] == '{', skipping quoted label values with backslash escapes.
func labelsEnd(s string) (int, error) {
	inQuote := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '}':
			return i, nil
		}
	}
	return 0, fmt.Errorf("unterminated label set")
}
