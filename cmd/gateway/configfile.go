package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// maxConfigFileSize bounds the config file read.
const maxConfigFileSize = 1 << 20

// loadConfigFile sets every flag named by a key of the TOML file at path,
// except those in set (given by flag or environment, which win).
func loadConfigFile(fs *flag.FlagSet, path string, set map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("gateway: -config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFileSize+1))
	if err != nil {
		return fmt.Errorf("gateway: -config: %w", err)
	}
	if len(b) > maxConfigFileSize {
		return fmt.Errorf("gateway: -config %s: larger than %d bytes", path, maxConfigFileSize)
	}
	if err := applyConfigTOML(fs, b, set); err != nil {
		return fmt.Errorf("gateway: -config %s: %w", path, err)
	}
	return nil
}

// applyConfigTOML decodes TOML whose keys are flag names and sets the
// flags not in set. Unknown keys, tables and values of the wrong type are
// errors naming the key.
func applyConfigTOML(fs *flag.FlagSet, data []byte, set map[string]bool) error {
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		return err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		if err := applyConfigKey(fs, k, m[k], set); err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

func applyConfigKey(fs *flag.FlagSet, k string, v any, set map[string]bool) error {
	f := fs.Lookup(k)
	if f == nil || k == "config" {
		return errors.New("unknown key (keys are flag names, see -help)")
	}
	if set[k] {
		return nil // the command line or the environment wins
	}
	want := "a string"
	var vals []string
	switch f.Value.(flag.Getter).Get().(type) {
	case bool:
		want = "true or false"
		if b, ok := v.(bool); ok {
			vals = []string{strconv.FormatBool(b)}
		}
	case int:
		want = "an integer"
		if n, ok := v.(int64); ok && n >= math.MinInt && n <= math.MaxInt {
			vals = []string{strconv.FormatInt(n, 10)}
		}
	case time.Duration:
		want = `a duration string such as "30s"`
		if s, ok := v.(string); ok {
			vals = []string{s}
		}
	case []string:
		want = "a string or an array of strings"
		vals = stringsOf(v)
		if vals != nil {
			if l, ok := f.Value.(*stringList); ok {
				// The file replaces the default list.
				l.vals, l.isDefault = nil, false
				if len(vals) == 0 {
					return nil
				}
			}
		}
	case *slog.Level, string:
		if s, ok := v.(string); ok {
			vals = []string{s}
		}
	default:
		// prefixList and anything else parsed from one string.
		want = "a string or an array of strings"
		if s := stringsOf(v); s != nil {
			vals = []string{strings.Join(s, ",")}
		}
	}
	if vals == nil {
		return fmt.Errorf("want %s, got %s", want, tomlType(v))
	}
	for _, s := range vals {
		if err := fs.Set(k, s); err != nil {
			return fmt.Errorf("invalid value %q: %w", s, err)
		}
	}
	return nil
}

// stringsOf returns v as strings if it is a string or an array of strings,
// else nil.
func stringsOf(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	return nil
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date/time"
	}
	return fmt.Sprintf("%T", v)
}
