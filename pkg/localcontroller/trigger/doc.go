// Package trigger owns the trigger engine of sedna-lc: it turns the Trigger of an incremental or
// lifelong learning job (an optional daily window AND a metric condition) into a decision, fire or
// not, with one sentence saying why, for the stage machines in pkg/localcontroller/managers.
//
// The package is pure: it reads only the spec, the wall clock it is handed and the metrics map it
// is handed. Scheduling (calling Evaluate every Period), persisting "already fired this round" and
// writing status conditions belong to the managers; this package keeps no state between calls, so
// a *Trigger is safe for concurrent use.
//
// Semantics follow upstream Sedna's trigger, with its defects fixed:
//
//   - The trigger fires when the timer (if set) AND the condition hold.
//   - Operators are gt/>, ge/>=, eq/=/==, ne/!=, le/<=, lt/<. Two numbers are equal when they differ
//     by less than 1e-6, so ge and le include values equal within that tolerance and gt and lt
//     exclude them. gt is therefore always the negation of le, lt of ge and ne of eq.
//   - The metric is "name" or "name[i]"; i indexes a list value. The syntax is the CRD's pattern
//     ^[A-Za-z_][A-Za-z0-9_.-]*(\[[0-9]+\])?$ and New rejects anything else (and indexes past
//     2147483647, so an index means the same on every platform).
//   - Values may be Go integers and floats, json.Number, numeric strings, or lists of those.
//     Anything else (bool, null, maps, non-numeric strings, nested lists, NaN) is an error naming
//     the metric and the type. Upstream silently read such values as 0, so a deploy trigger on
//     "precision_delta" (a list) could never fire and nobody was told.
//   - A list used without an index fires only when the condition holds for EVERY element; an empty
//     list never fires. "All elements" is the reading that cannot deploy a model that got worse on
//     some metric, which is the conservative choice for deploy triggers.
//   - A metric that is absent from the map has not been reported yet: the trigger does not fire
//     and that is not an error.
//   - The timer is a daily window "HH:MM"-"HH:MM", both ends inclusive, compared as minutes of the
//     day in the location of the time given to Evaluate (the node's local clock). A start after
//     the end wraps past midnight; equal ends mean that single minute. Upstream compared strings,
//     which broke on anything that was not zero-padded.
//   - The end may be "24:00", the end of the day, as upstream's IL and LL samples write it: the
//     window runs through 23:59 and does not wrap, so 00:00 is outside "22:00"-"24:00" (it is
//     inside "22:00"-"00:00"). That is what upstream's string comparison did, since every reading
//     sorts before "24:00". A start of "24:00" is refused, as the CRD refuses it: upstream read it
//     as "00:00" except that "24:00"-"24:00" never opened, and "00:00" says it plainly.
//   - checkPeriodSeconds sets Period; upstream ignored it and evaluated every 10 seconds, which
//     remains the default.
package trigger
