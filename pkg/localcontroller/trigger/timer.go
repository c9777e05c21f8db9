package trigger

import (
	"errors"
	"fmt"
	"time"
)

const minutesPerDay = 24 * 60

// endOfDay is "24:00" in minutes of the day. Only a window's end may be it: the window then runs
// through 23:59 without wrapping, which is what upstream's string comparison made of the "24:00"
// its samples use (every "HH:MM" reading sorts before "24:00").
const endOfDay = minutesPerDay

// window is a daily window in minutes of the day, both ends inclusive. start is in
// [0, minutesPerDay), end in [0, endOfDay].
type window struct {
	start, end int
}

// clockRole says which end of a window a time is: only an end may be "24:00".
type clockRole int

const (
	windowStart clockRole = iota
	windowEnd
)

// parseClock reads "HH:MM" with both fields zero-padded, as the CRD's pattern requires, and
// "24:00" as the end of the day when role is windowEnd. Upstream compared the raw strings with the
// formatted clock, so "9:00" silently sorted after "10:00"; here such a value is rejected instead.
//
// Upstream also took "24:00" as a start, where its string comparison made it "00:00" except that a
// window from "24:00" to "24:00" never opened; the CRD refuses it, and so does parseClock, with the
// CRD's message.
func parseClock(text string, role clockRole) (int, error) {
	if len(text) != 5 || text[2] != ':' || !isDigit(text[0]) || !isDigit(text[1]) || !isDigit(text[3]) || !isDigit(text[4]) {
		return 0, errors.New("is not HH:MM")
	}
	hour := int(text[0]-'0')*10 + int(text[1]-'0')
	minute := int(text[3]-'0')*10 + int(text[4]-'0')
	if hour == 24 && minute == 0 {
		if role == windowEnd {
			return endOfDay, nil
		}
		return 0, errors.New("is the end of the day and only valid as end; a window starting at midnight starts at 00:00")
	}
	if hour > 23 {
		return 0, fmt.Errorf("is not HH:MM: hour %02d is not in 00-23 (and 24 only in the end 24:00)", hour)
	}
	if minute > 59 {
		return 0, fmt.Errorf("is not HH:MM: minute %02d is not in 00-59", minute)
	}
	return hour*60 + minute, nil
}

func isDigit(b byte) bool {
	return b >= '0' && b <= '9'
}

// formatClock is the inverse of parseClock for minutes in [0, endOfDay].
func formatClock(minuteOfDay int) string {
	return fmt.Sprintf("%02d:%02d", minuteOfDay/60, minuteOfDay%60)
}

// minuteOfDay reads the wall clock in now's own location: the LC hands in its local time, and a
// daily window means the node's day, not UTC's.
func minuteOfDay(now time.Time) int {
	return now.Hour()*60 + now.Minute()
}

// contains reports whether minute, in [0, minutesPerDay), is inside the window. An end of endOfDay
// takes the start <= end branch: the window runs to the day's last minute and never wraps.
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
