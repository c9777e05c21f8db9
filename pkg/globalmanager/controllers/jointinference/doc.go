// Package jointinference is the GM controller of JointInferenceServices.
//
// This first part sends each service to the LC of its edge worker's node and turns the edge
// worker's reports (upstream's inference counters) into status.metrics. Creating the cloud and
// edge worker Deployments, the Service and the HPAs comes with the joint-inference feature.
package jointinference
