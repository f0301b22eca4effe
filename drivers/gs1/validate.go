package gs1

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUnknownAI is wrapped by errors about an application identifier that
// is not in the table.
var ErrUnknownAI = errors.New("unknown AI")

// Error is a problem with one element of a GS1 element string or Digital
// Link URI: which AI, where, and what is wrong.
type Error struct {
	AI    string // the AI concerned; for ErrUnknownAI the digits that match no AI
	Pos   int    // byte offset of the AI in the input, 0-based; -1 when Where is set
	Where string // position in words, e.g. "in the URI path", when Pos does not apply
	Err   error  // what is wrong; may wrap ErrCheckDigit or ErrUnknownAI
}

// Error formats e.g. "gs1: unknown AI 23 at position 17" or
// "gs1: AI 17 at position 16: invalid date 201345: month 13".
func (e *Error) Error() string {
	where := e.Where
	if where == "" && e.Pos >= 0 {
		where = fmt.Sprintf("at position %d", e.Pos)
	}
	if errors.Is(e.Err, ErrUnknownAI) {
		return strings.TrimSpace(fmt.Sprintf("gs1: unknown AI %s %s", e.AI, where))
	}
	if where != "" {
		where = " " + where
	}
	return fmt.Sprintf("gs1: AI %s%s: %v", e.AI, where, e.Err)
}

// Unwrap returns the underlying problem.
func (e *Error) Unwrap() error { return e.Err }

// validate checks value against the AI's parts, character sets, check
// digits and date rules, and returns the resolved date of a date AI.
func (sp *spec) validate(value string, now time.Time) (time.Time, error) {
	if err := sp.checkParts(value); err != nil {
		return time.Time{}, err
	}
	switch sp.kind {
	case kindDate:
		return parseDate(value, now, true)
	case kindDateTime:
		d, err := parseDate(value[:6], now, false)
		if err != nil {
			return time.Time{}, err
		}
		hh, mm := atoi2(value[6:8]), atoi2(value[8:10])
		if hh > 23 || mm > 59 {
			return time.Time{}, fmt.Errorf("invalid time %s: want HHMM", value[6:10])
		}
		return d.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute), nil
	}
	return time.Time{}, nil
}

// checkParts matches value against the parts in order: each part takes up
// to its maximum length (digits only for numeric parts).
func (sp *spec) checkParts(value string) error {
	rest := value
	for i, p := range sp.parts {
		take := min(p.max, len(rest))
		if p.cset == csetN {
			for j := 0; j < take; j++ {
				if rest[j] < '0' || rest[j] > '9' {
					if j < p.min || i == len(sp.parts)-1 {
						return fmt.Errorf("non-digit %q at value position %d (format %s)", rest[j], len(value)-len(rest)+j, formatOf(sp))
					}
					take = j
					break
				}
			}
		}
		if take < p.min {
			return fmt.Errorf("value %q too short: format %s", value, formatOf(sp))
		}
		seg := rest[:take]
		for j := 0; j < len(seg); j++ {
			c := seg[j]
			ok := p.cset == csetN || p.cset == cset82 && in82(c) || p.cset == cset39 && in39(c)
			if !ok {
				return fmt.Errorf("character %q at value position %d is not allowed (format %s)", c, len(value)-len(rest)+j, formatOf(sp))
			}
		}
		if p.check {
			if err := keyError(sp.title, seg, len(seg)); err != nil {
				return err
			}
		}
		rest = rest[take:]
	}
	if rest != "" {
		return fmt.Errorf("value %q too long: format %s", value, formatOf(sp))
	}
	return nil
}

func formatOf(sp *spec) string {
	info, _ := LookupAI(sp.code)
	return info.Format
}

func atoi2(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }

// parseDate resolves a YYMMDD date. The century follows the GS1 General
// Specifications 7.12 sliding window: a year 51 or more ahead of now's
// two-digit year is in the previous century, one 50 or more behind is in
// the next. Day 00 (when allowed) means the last day of the month.
func parseDate(s string, now time.Time, day00 bool) (time.Time, error) {
	yy, mm, dd := atoi2(s[0:2]), atoi2(s[2:4]), atoi2(s[4:6])
	if mm < 1 || mm > 12 {
		return time.Time{}, fmt.Errorf("invalid date %s: month %02d", s, mm)
	}
	cur := now.Year()
	century := cur / 100 * 100
	switch diff := yy - cur%100; {
	case diff >= 51:
		century -= 100
	case diff <= -50:
		century += 100
	}
	year := century + yy
	last := time.Date(year, time.Month(mm)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	switch {
	case dd == 0 && day00:
		dd = last
	case dd < 1 || dd > last:
		return time.Time{}, fmt.Errorf("invalid date %s: day %02d (month %02d of %d has %d days)", s, dd, mm, year, last)
	}
	return time.Date(year, time.Month(mm), dd, 0, 0, 0, 0, time.UTC), nil
}
