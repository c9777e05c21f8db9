package fl

import (
	"fmt"
	"strings"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

// Nodes is the number of edge nodes of the example.
const Nodes = 3

// NodeClasses are the digits each node sees: four each, twelve slots for ten
// digits, so two digits (3 and 7) are shared, each by two nodes, and no node
// sees six of the ten digits.
var NodeClasses = [Nodes][]int{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 3, 7}}

// Split assigns the training images to nodes by label: an image whose digit
// one node owns goes there; the images of a shared digit alternate between
// its nodes in dataset order. It returns each node's image numbers in
// dataset order.
func Split(labels []uint8) [Nodes][]int {
	var owners [model.Classes][]int
	for node, classes := range NodeClasses {
		for _, class := range classes {
			owners[class] = append(owners[class], node)
		}
	}
	var seen [model.Classes]int
	var out [Nodes][]int
	for i, label := range labels {
		nodes := owners[label]
		if len(nodes) == 0 {
			continue
		}
		node := nodes[seen[label]%len(nodes)]
		seen[label]++
		out[node] = append(out[node], i)
	}
	return out
}

// SplitTable prints the number of images of every digit on every node.
func SplitTable(labels []uint8, split [Nodes][]int) string {
	var b strings.Builder
	b.WriteString("node        ")
	for class := range model.Classes {
		fmt.Fprintf(&b, "%6d", class)
	}
	b.WriteString("   total\n")
	for node, images := range split {
		var counts [model.Classes]int
		for _, i := range images {
			counts[labels[i]]++
		}
		fmt.Fprintf(&b, "%-12s", NodeName(node))
		for _, n := range counts {
			if n == 0 {
				fmt.Fprintf(&b, "%6s", "-")
			} else {
				fmt.Fprintf(&b, "%6d", n)
			}
		}
		fmt.Fprintf(&b, "%8d\n", len(images))
	}
	return b.String()
}

// NodeName is the edge node that holds shard node (0-based): edge-node-1..3.
func NodeName(node int) string { return fmt.Sprintf("edge-node-%d", node+1) }

// Subset returns the images of data whose numbers are listed.
func Subset(data model.Dataset, images []int) model.Dataset {
	out := model.Dataset{Pixels: make([]uint8, 0, len(images)*model.Pixels), Labels: make([]uint8, 0, len(images))}
	for _, i := range images {
		out.Pixels = append(out.Pixels, data.Pixels[i*model.Pixels:(i+1)*model.Pixels]...)
		out.Labels = append(out.Labels, data.Labels[i])
	}
	return out
}

// LabelsOf lists the digits data holds, in increasing order.
func LabelsOf(data model.Dataset) []int {
	var seen [model.Classes]bool
	for _, label := range data.Labels {
		seen[label] = true
	}
	var out []int
	for class, ok := range seen {
		if ok {
			out = append(out, class)
		}
	}
	return out
}

// NodeOf is the share (0-based) whose digits are exactly digits.
func NodeOf(digits []int) (int, bool) {
	for node, classes := range NodeClasses {
		if len(classes) != len(digits) {
			continue
		}
		owned := map[int]bool{}
		for _, class := range classes {
			owned[class] = true
		}
		match := true
		for _, d := range digits {
			match = match && owned[d]
		}
		if match {
			return node, true
		}
	}
	return 0, false
}
