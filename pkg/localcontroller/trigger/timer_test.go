package trigger

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// crdClockPattern is the pattern on Timer.Start and Timer.End in the API types.
var crdClockPattern = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

func TestParseClock(t *testing.T) {
	tests := map[string]struct {
		text    string
		want    int
		wantErr string
	}{
		"midnight":            {text: "00:00", want: 0},
		"last minute":         {text: "23:59", want: 23*60 + 59},
		"morning":             {text: "09:05", want: 9*60 + 5},
		"noon":                {text: "12:00", want: 720},
		"unpadded hour":       {text: "9:00", wantErr: "is not HH:MM"},
		"unpadded minute":     {text: "09:5", wantErr: "is not HH:MM"},
		"hour 24":             {text: "24:00", wantErr: "hour 24 is not in 00-23"},
		"hour 99":             {text: "99:00", wantErr: "hour 99 is not in 00-23"},
		"minute 60":           {text: "12:60", wantErr: "minute 60 is not in 00-59"},
		"empty":               {text: "", wantErr: "is not HH:MM"},
		"dash separator":      {text: "12-00", wantErr: "is not HH:MM"},
		"seconds":             {text: "12:00:00", wantErr: "is not HH:MM"},
		"trailing space":      {text: "12:00 ", wantErr: "is not HH:MM"},
		"letters":             {text: "ab:cd", wantErr: "is not HH:MM"},
		"signed":              {text: "-1:00", wantErr: "is not HH:MM"},
		"full-width digits":   {text: "１2:00", wantErr: "is not HH:MM"},
		"twelve-hour clock":   {text: "12:00pm", wantErr: "is not HH:MM"},
		"daily (upstream's)":  {text: "daily", wantErr: "is not HH:MM"},
		"colon in wrong spot": {text: "120:0", wantErr: "is not HH:MM"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseClock(tc.text)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.False(t, crdClockPattern.MatchString(tc.text))
				return
			}
			require.NoError(t, err)
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
			w := window{start: mustClock(t, tc.start), end: mustClock(t, tc.end)}
			for _, clock := range tc.inside {
				require.True(t, w.contains(mustClock(t, clock)), "%s should be inside %s", clock, w)
			}
			for _, clock := range tc.outside {
				require.False(t, w.contains(mustClock(t, clock)), "%s should be outside %s", clock, w)
			}
		})
	}
}

func mustClock(t *testing.T, text string) int {
	t.Helper()
	minute, err := parseClock(text)
	require.NoError(t, err)
	return minute
}

func FuzzParseClock(f *testing.F) {
	for _, seed := range []string{"00:00", "23:59", "09:05", "9:00", "24:00", "12:60", "", "12:00:00", "１2:00", "ab:cd", "2\x003:00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		minute, err := parseClock(text)
		if accepted := crdClockPattern.MatchString(text); accepted != (err == nil) {
			t.Fatalf("parseClock(%q) error %v, but the CRD pattern match is %v", text, err, accepted)
		}
		if err != nil {
			return
		}
		if minute < 0 || minute >= minutesPerDay {
			t.Fatalf("parseClock(%q) = %d, not a minute of the day", text, minute)
		}
		if back := formatClock(minute); back != text {
			t.Fatalf("formatClock(parseClock(%q)) = %q", text, back)
		}
	})
}

// FuzzWindowContains checks contains against a second formulation: a minute is inside when it is
// no further past start (going forward around the clock) than end is.
func FuzzWindowContains(f *testing.F) {
	f.Add(uint16(120), uint16(360), uint16(240))
	f.Add(uint16(1320), uint16(360), uint16(1439))
	f.Add(uint16(1320), uint16(360), uint16(361))
	f.Add(uint16(750), uint16(750), uint16(750))
	f.Add(uint16(750), uint16(750), uint16(751))
	f.Fuzz(func(t *testing.T, start, end, minute uint16) {
		w := window{start: int(start) % minutesPerDay, end: int(end) % minutesPerDay}
		m := int(minute) % minutesPerDay
		forward := func(from, to int) int { return ((to-from)%minutesPerDay + minutesPerDay) % minutesPerDay }
		want := forward(w.start, m) <= forward(w.start, w.end)
		if got := w.contains(m); got != want {
			t.Fatalf("%s contains %s = %v, want %v", w, formatClock(m), got, want)
		}
	})
}
