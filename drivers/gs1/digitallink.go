package gs1

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// keyQualifiers lists the primary keys a Digital Link path may carry and,
// for each, the key qualifiers allowed after it in the order the GS1
// Digital Link standard (URI Syntax 1.2, section 4) requires.
var keyQualifiers = map[string][]string{
	"00":   nil,
	"01":   {"22", "10", "21"},
	"253":  nil,
	"255":  nil,
	"401":  nil,
	"402":  nil,
	"414":  {"254"},
	"417":  nil,
	"8003": nil,
	"8004": nil,
	"8006": {"22", "10", "21"},
	"8010": {"8011"},
	"8017": {"8019"},
	"8018": {"8019"},
}

// IsDigitalLink reports whether s looks like a GS1 Digital Link URI: an
// http or https URI whose path holds a primary key and its value.
func IsDigitalLink(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return false
	}
	_, ok := findKey(pathSegments(u))
	return ok
}

// ParseDigitalLink parses an uncompressed GS1 Digital Link URI
//
//	https://any.domain[/prefix…]/{key AI}/{key}[/{qualifier AI}/{value}…][?{AI}={value}&…]
//
// e.g. https://id.gs1.org/01/09520123456788/10/ABC123/21/12345?17=180426.
// Path segments and query values are percent-decoded; every AI is
// validated as in ParseElementString. A GTIN of 8, 12 or 13 digits in the
// path is padded to GTIN-14. Query parameters whose names are not all
// digits are not AIs and are ignored; numeric ones must be known AIs.
func ParseDigitalLink(uri string, opts Options) (Elements, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("gs1: digital link: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("gs1: digital link %q: want an http or https URI with a domain", uri)
	}
	segs := pathSegments(u)
	at, ok := findKey(segs)
	if !ok {
		return nil, fmt.Errorf("gs1: digital link %q: no GS1 primary key with valid qualifiers in the path (e.g. /01/{gtin}/10/{lot})", u.Path)
	}
	now := opts.now()
	var out Elements
	for i := at; i < len(segs); i += 2 {
		value, err := url.PathUnescape(segs[i+1])
		if err != nil {
			return nil, &Error{AI: segs[i], Pos: -1, Where: "in the URI path", Err: err}
		}
		if segs[i] == "01" && len(value) != 14 {
			if norm, err := NormalizeGTIN(value); err == nil {
				value = norm
			}
		}
		if out, err = addDL(out, segs[i], value, "in the URI path", now); err != nil {
			return nil, err
		}
	}
	for _, kv := range strings.Split(u.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" || !allDigits(k) {
			continue
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			return nil, &Error{AI: k, Pos: -1, Where: "in the URI query", Err: err}
		}
		if out, err = addDL(out, k, value, "in the URI query", now); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func addDL(out Elements, ai, value, where string, now time.Time) (Elements, error) {
	sp, ok := table[ai]
	if !ok {
		return nil, &Error{AI: ai, Pos: -1, Where: where, Err: ErrUnknownAI}
	}
	el, err := newElement(sp, value, -1, now)
	if err == nil {
		out, err = out.add(el)
	}
	var e *Error
	if errors.As(err, &e) {
		e.Where = where
	}
	return out, err
}

// pathSegments splits the escaped path so that an escaped "/" inside a
// value does not split it.
func pathSegments(u *url.URL) []string {
	p := strings.Trim(u.EscapedPath(), "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// findKey returns the index of the primary key segment: the first key AI
// such that everything after it is AI/value pairs made of its qualifiers
// in the standard's order.
func findKey(segs []string) (int, bool) {
	for i := 0; i+1 < len(segs); i++ {
		quals, ok := keyQualifiers[segs[i]]
		if !ok || (len(segs)-i)%2 != 0 {
			continue
		}
		if qualifiersInOrder(segs[i+2:], quals) {
			return i, true
		}
	}
	return 0, false
}

func qualifiersInOrder(pairs []string, allowed []string) bool {
	next := 0
	for j := 0; j < len(pairs); j += 2 {
		found := false
		for next < len(allowed) {
			next++
			if allowed[next-1] == pairs[j] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
