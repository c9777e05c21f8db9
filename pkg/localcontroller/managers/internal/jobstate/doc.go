// Package jobstate is what the LC managers of the learning jobs (incremental and lifelong
// learning) share about keeping a job on this node: the job's record and sample pools in the LC
// store (Saved), the reports for GM saved with the change that produced them and handed to the
// Reporter in order (Reports, Saved.Flush), sending the last stage report again when GM's
// published status lags (Saved.ResendIfGMLags), and the registry of a manager's jobs with their
// periodic loops (Jobs).
//
// The stored format is the managers': a record under a state namespace and the sample pools
// (rounds.Pools) as a blob under a pool namespace, both keyed <namespace>/<name>.
package jobstate
