package workers

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestScopeAcceptsOnlyWhatTheResourceDeclares(t *testing.T) {
	var s Scope
	s.Declare("/data/helmet/train_data/data.txt", "/models/base/model.pb", "s3://models/deploy/model.pb")
	s.DeclareTree("/output", "s3://bucket/il/output/", "/models/base/model.pb", "s3://models/deploy/model.pb")
	s.DeclareTreeOf("/data/helmet/train_data/data.txt")

	for _, ok := range []string{
		"/data/helmet/train_data/data.txt",       // declared
		"/models/base/model.pb",                  // declared
		"/output/train/1",                        // mounts /output/train
		"/output/data/train/1/data.txt",          // mounts /output/data/train/1
		"/output/",                               // mounts /output itself
		"/data/helmet/train_data/images/a.jpg",   // below the dataset index's directory
		"s3://bucket/il/output/train/1/model.pb", // same bucket, below the prefix
		"S3://Bucket/il/output/train/1/",         // scheme and bucket compare case-insensitively
		"s3://bucket/il/output",                  // the prefix itself is downloaded, not its parent
		"s3://models/deploy/model.pb",            // declared
	} {
		require.NoError(t, s.Check(ok), ok)
	}
	for _, refused := range []string{
		"/x",                                  // would mount /
		"/output",                             // equals the tree's root: its parent / would be mounted
		"/etc/shadow",                         // outside
		"/outputs/train/1",                    // a sibling sharing the prefix
		"/output/../etc/passwd",               // ..
		"/output/train/../../etc",             // ..
		"/output//train/1",                    // not clean
		"/output/./train/1",                   // not clean
		"/data/helmet/data.txt",               // above the dataset's directory
		"/models/other/model.pb",              // next to a declared model
		"output/train/1",                      // relative: would reach the env verbatim
		"file:///output/train/1",              // other scheme
		"s3://other-bucket/il/output/train/1", // another bucket
		"s3://bucket/il/elsewhere/model.pb",   // same bucket, outside the prefix
		"s3://bucket/il/output/../secret",     // ..
		"s3://bucket/il/output/x?versionId=1", // query
		"s3://user:pw@bucket/il/output/x",     // user info
		"http://bucket/il/output/train/1",     // another scheme than the tree's
		"",
	} {
		require.Error(t, s.Check(refused), refused)
	}
	require.ErrorContains(t, s.Check("/x"), `"/x" lies outside what the resource declares`)
	require.ErrorContains(t, s.Check("/output/../etc"), `contains ".."`)
}

func TestScopeRootsThatAreNotCleanCoverNothing(t *testing.T) {
	var s Scope
	s.DeclareTree("/output/../", "relative/dir", "")
	require.Error(t, s.Check("/output/x/y"))
	require.Error(t, s.Check("/x/y"))
}
