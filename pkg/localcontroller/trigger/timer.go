package trigger

import (
	"errors"
	"fmt"
	"time"
)

const minutesPerDay = 24 * 60

// window is a daily window in minutes of the day, both ends inclusive.
type window struct {
	start, end int
}

// parseClock reads "HH:MM" with both fields zero-padded, as the CRD's pattern requires. Upstream
// compared the raw strings with the formatted clock, so "9:00" silently sorted after "10:00";
// here such a value is rejected instead.
func parseClock(text string) (int, error) {
	if len(text) != 5 || text[2] != ':' || !isDigit(text[0]) || !isDigit(text[1]) || !isDigit(text[3]) || !isDigit(text[4]) {
		return 0, errors.New("is not HH:MM")
	}
	hour := int(text[0]-'0')*10 + int(text[1]-'0')
	minute := int(text[3]-'0')*10 + int(text[4]-'0')
	if hour > 23 {
		return 0, fmt.Errorf("is not HH:MM: hour %02d is not in 00-23", hour)
	}
	if minute > 59 {
		return 0, fmt.Errorf("is not HH:MM: minute %02d is not in 00-59", minute)
	}
	return hour*60 + minute, nil
}

func isDigit(b byte) bool {
	return b >= '0' && b <= '9'
}

// formatClock is the inverse of parseClock for minutes in [0, minutesPerDay).
func formatClock(minuteOfDay int) string {
	return fmt.Sprintf("%02d:%02d", minuteOfDay/60, minuteOfDay%60)
}

// minuteOfDay reads the wall clock in now's own location: the LC hands in its local time, and a
// daily window means the node's day, not UTC's.
func minuteOfDay(now time.Time) int {
	return now.Hour()*60 + now.Minute()
}

func (w window) contains(minute int) bool {
	if w.start <= w.end {
		return w.start <= minute && minute <= w.end
	}
	// start after end: the window runs from start to midnight and on from midnight to end.
	return minute >= w.start || minute <= w.end
}

func (w window) String() string {
	return formatClock(w.start) + "-" + formatClock(w.end)
}
