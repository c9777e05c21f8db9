package trigger

import (
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// crdTimer is what the shipped CRD accepts for a timer's start and end, read from build/crds so
// that the trigger and the API server cannot drift apart.
type crdTimer struct {
	start, end *regexp.Regexp
	// startRefusesEndOfDay: the CRD's rule on start refuses "24:00".
	startRefusesEndOfDay bool
}

var (
	loadCRDTimerOnce sync.Once
	loadedCRDTimer   crdTimer
	loadCRDTimerErr  error
)

func loadCRDTimer(t testing.TB) crdTimer {
	t.Helper()
	loadCRDTimerOnce.Do(func() { loadedCRDTimer, loadCRDTimerErr = readCRDTimer() })
	require.NoError(t, loadCRDTimerErr)
	return loadedCRDTimer
}

func readCRDTimer() (crdTimer, error) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "build", "crds", "sedna.io_incrementallearningjobs.yaml"))
	if err != nil {
		return crdTimer{}, err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		return crdTimer{}, err
	}
	schema := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	timer := schema.Properties["spec"].Properties["trainSpec"].Properties["trigger"].Properties["timer"]
	start, end := timer.Properties["start"], timer.Properties["end"]
	got := crdTimer{}
	if got.start, err = regexp.Compile(start.Pattern); err != nil {
		return crdTimer{}, err
	}
	if got.end, err = regexp.Compile(end.Pattern); err != nil {
		return crdTimer{}, err
	}
	for _, rule := range start.XValidations {
		if rule.Rule != "self != '24:00'" {
			// An unknown rule would make the fuzz tests' model of the CRD wrong.
			return crdTimer{}, &unexpectedRule{rule.Rule}
		}
		got.startRefusesEndOfDay = true
	}
	if len(end.XValidations) > 0 {
		return crdTimer{}, &unexpectedRule{end.XValidations[0].Rule}
	}
	return got, nil
}

type unexpectedRule struct{ rule string }

func (e *unexpectedRule) Error() string {
	return "the CRD's timer has a rule these tests do not model: " + e.rule
}

// accepts is the CRD's verdict on text as role.
func (c crdTimer) accepts(text string, role clockRole) bool {
	if role == windowEnd {
		return c.end.MatchString(text)
	}
	return c.start.MatchString(text) && !(c.startRefusesEndOfDay && text == "24:00")
}

func TestParseClock(t *testing.T) {
	crd := loadCRDTimer(t)
	tests := map[string]struct {
		text    string
		role    clockRole
		want    int
		wantErr string
	}{
		"midnight":                 {text: "00:00", want: 0},
		"midnight as end":          {text: "00:00", role: windowEnd, want: 0},
		"last minute":              {text: "23:59", want: 23*60 + 59},
		"last minute as end":       {text: "23:59", role: windowEnd, want: 23*60 + 59},
		"end of day as end":        {text: "24:00", role: windowEnd, want: endOfDay},
		"end of day as start":      {text: "24:00", role: windowStart, wantErr: "is the end of the day and only valid as end; a window starting at midnight starts at 00:00"},
		"past end of day as end":   {text: "24:01", role: windowEnd, wantErr: "hour 24 is not in 00-23 (and 24 only in the end 24:00)"},
		"past end of day as start": {text: "24:01", wantErr: "hour 24 is not in 00-23"},
		"hour 25 as end":           {text: "25:00", role: windowEnd, wantErr: "hour 25 is not in 00-23"},
		"morning":                  {text: "09:05", want: 9*60 + 5},
		"noon":                     {text: "12:00", want: 720},
		"unpadded hour":            {text: "9:00", wantErr: "is not HH:MM"},
		"unpadded minute":          {text: "09:5", wantErr: "is not HH:MM"},
		"hour 99":                  {text: "99:00", wantErr: "hour 99 is not in 00-23"},
		"minute 60":                {text: "12:60", wantErr: "minute 60 is not in 00-59"},
		"empty":                    {text: "", wantErr: "is not HH:MM"},
		"dash separator":           {text: "12-00", wantErr: "is not HH:MM"},
		"seconds":                  {text: "12:00:00", wantErr: "is not HH:MM"},
		"trailing space":           {text: "12:00 ", wantErr: "is not HH:MM"},
		"letters":                  {text: "ab:cd", wantErr: "is not HH:MM"},
		"signed":                   {text: "-1:00", wantErr: "is not HH:MM"},
		"full-width digits":        {text: "１2:00", wantErr: "is not HH:MM"},
		"twelve-hour clock":        {text: "12:00pm", wantErr: "is not HH:MM"},
		"daily (upstream's)":       {text: "daily", wantErr: "is not HH:MM"},
		"colon in wrong spot":      {text: "120:0", wantErr: "is not HH:MM"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseClock(tc.text, tc.role)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.False(t, crd.accepts(tc.text, tc.role), "the CRD accepts what the trigger refuses")
				return
			}
			require.NoError(t, err)
			require.True(t, crd.accepts(tc.text, tc.role), "the CRD refuses what the trigger accepts")
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.text, formatClock(got))
		})
	}
}

func TestWindowContains(t *testing.T) {
	tests := map[string]struct {
		start, end string
		inside     []string
		outside    []string
	}{
		"same-day window": {
			start: "02:00", end: "06:00",
			inside:  []string{"02:00", "02:01", "04:00", "05:59", "06:00"},
			outside: []string{"00:00", "01:59", "06:01", "12:00", "23:59"},
		},
		"wraps past midnight": {
			start: "22:00", end: "06:00",
			inside:  []string{"22:00", "23:59", "00:00", "05:00", "06:00"},
			outside: []string{"06:01", "12:00", "21:59"},
		},
		"single minute": {
			start: "12:30", end: "12:30",
			inside:  []string{"12:30"},
			outside: []string{"12:29", "12:31", "00:00", "23:59"},
		},
		"whole day": {
			start: "00:00", end: "23:59",
			inside: []string{"00:00", "12:00", "23:59"},
		},
		"whole day to 24:00 (upstream's samples)": {
			start: "00:00", end: "24:00",
			inside: []string{"00:00", "00:01", "12:00", "23:59"},
		},
		"to the end of the day, not past midnight": {
			start: "22:00", end: "24:00",
			inside:  []string{"22:00", "23:00", "23:59"},
			outside: []string{"00:00", "00:01", "06:00", "21:59"},
		},
		"to midnight inclusive, wrapping": {
			start: "22:00", end: "00:00",
			inside:  []string{"22:00", "23:59", "00:00"},
			outside: []string{"00:01", "21:59"},
		},
		"last minute to the end of the day": {
			start: "23:59", end: "24:00",
			inside:  []string{"23:59"},
			outside: []string{"00:00", "23:58", "12:00"},
		},
		"wraps by one minute, all day": {
			start: "00:01", end: "00:00",
			inside: []string{"00:00", "00:01", "12:00", "23:59"},
		},
		"last minute to first minute": {
			start: "23:59", end: "00:00",
			inside:  []string{"23:59", "00:00"},
			outside: []string{"00:01", "23:58", "12:00"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := window{start: mustClock(t, tc.start, windowStart), end: mustClock(t, tc.end, windowEnd)}
			for _, clock := range tc.inside {
				require.True(t, w.contains(mustClock(t, clock, windowStart)), "%s should be inside %s", clock, w)
			}
			for _, clock := range tc.outside {
				require.False(t, w.contains(mustClock(t, clock, windowStart)), "%s should be outside %s", clock, w)
			}
		})
	}
}

// TestWindowMatchesUpstreamStringComparison checks windows with zero-padded starts and ends,
// "24:00" among the ends, at every minute of the day against upstream's rule: times compared as
// strings, start > end wrapping.
func TestWindowMatchesUpstreamStringComparison(t *testing.T) {
	upstream := func(start, end, now string) bool {
		if start > end {
			return start <= now || now <= end
		}
		return start <= now && now <= end
	}
	clocks := make([]string, endOfDay+1)
	for minute := range clocks {
		clocks[minute] = formatClock(minute)
	}
	// Every quarter hour plus the minutes next to midnight keeps the walk short while covering
	// both sides of each boundary that matters: 00:00, 23:59 and 24:00.
	var ends []int
	for minute := 0; minute <= endOfDay; minute += 15 {
		ends = append(ends, minute)
	}
	ends = append(ends, 1, minutesPerDay-1)
	for _, start := range ends {
		if start == endOfDay {
			continue
		}
		for _, end := range ends {
			w := window{start: start, end: end}
			for minute := range minutesPerDay {
				want := upstream(clocks[start], clocks[end], clocks[minute])
				if got := w.contains(minute); got != want {
					t.Fatalf("%s contains %s = %v, upstream says %v", w, clocks[minute], got, want)
				}
			}
		}
	}
}

func mustClock(t *testing.T, text string, role clockRole) int {
	t.Helper()
	minute, err := parseClock(text, role)
	require.NoError(t, err)
	return minute
}

func FuzzParseClock(f *testing.F) {
	for _, seed := range []string{"00:00", "23:59", "09:05", "9:00", "24:00", "24:01", "12:60", "", "12:00:00", "１2:00", "ab:cd", "2\x003:00"} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	crd := loadCRDTimer(f)
	f.Fuzz(func(t *testing.T, text string, asEnd bool) {
		role := windowStart
		if asEnd {
			role = windowEnd
		}
		minute, err := parseClock(text, role)
		if accepted := crd.accepts(text, role); accepted != (err == nil) {
			t.Fatalf("parseClock(%q, %v) error %v, but the CRD's verdict is %v", text, role, err, accepted)
		}
		if err != nil {
			return
		}
		limit := minutesPerDay - 1
		if role == windowEnd {
			limit = endOfDay
		}
		if minute < 0 || minute > limit {
			t.Fatalf("parseClock(%q, %v) = %d, not in [0, %d]", text, role, minute, limit)
		}
		if back := formatClock(minute); back != text {
			t.Fatalf("formatClock(parseClock(%q)) = %q", text, back)
		}
	})
}

// FuzzWindowContains checks contains against a second formulation: a minute is inside when it is
// no further past start (going forward around the clock) than end is; an end of 24:00 is the
// minute after 23:59 without going around.
func FuzzWindowContains(f *testing.F) {
	f.Add(uint16(120), uint16(360), uint16(240))
	f.Add(uint16(1320), uint16(360), uint16(1439))
	f.Add(uint16(1320), uint16(360), uint16(361))
	f.Add(uint16(750), uint16(750), uint16(750))
	f.Add(uint16(750), uint16(750), uint16(751))
	f.Add(uint16(1320), uint16(1440), uint16(0))
	f.Add(uint16(1320), uint16(1440), uint16(1439))
	f.Fuzz(func(t *testing.T, start, end, minute uint16) {
		w := window{start: int(start) % minutesPerDay, end: int(end) % (endOfDay + 1)}
		m := int(minute) % minutesPerDay
		forward := func(from, to int) int { return ((to-from)%minutesPerDay + minutesPerDay) % minutesPerDay }
		want := forward(w.start, m) <= forward(w.start, w.end)
		if w.end == endOfDay {
			want = m >= w.start
		}
		if got := w.contains(m); got != want {
			t.Fatalf("%s contains %s = %v, want %v", w, formatClock(m), got, want)
		}
	})
}
