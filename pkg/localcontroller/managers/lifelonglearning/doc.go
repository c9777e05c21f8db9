// Package lifelonglearning is the LC's lifelong learning manager: it drives the train → eval →
// deploy rounds of the LifelongLearningJobs whose Dataset is on this node, as upstream's LC does
// (contract §4.8), on the round state machine and sample pools it shares with the incremental
// learning manager (package rounds).
//
// Every period (the train trigger's checkPeriodSeconds) a job takes the samples appended to its
// Dataset's index, splits them (the first trainProb of each batch to training, the rest to a new
// eval version) and evaluates its train trigger with {"num_of_samples": <train pool size>}. When it
// fires, the round starts: the train pool is written to <outputDir>/data/train/<round>/data.csv
// (the index's header line first) and GM gets Train/Ready with the last trained KB index as
// input.models[0] (GM's CLOUD_KB_INDEX). The train worker reports models[0].url = the index it
// wrote; the LC writes the eval samples, GM gets Eval/Ready with the train output models; after
// evaluation the LC copies the index to <outputDir>/deploy/index.pkl (the inference worker's
// MODEL_URLS) and reports Deploy/Ready, then Deploy/Completed and the round's result.
//
// The job record (state, round data, pending reports, round history) and the sample pools are
// saved in the LC store with every transition, so a restarted LC resumes the round it was in.
// Only host-path output directories and datasets are supported; an index URL on http(s) is read
// only below Options.KBServer's /knowledgebase/ route.
package lifelonglearning
