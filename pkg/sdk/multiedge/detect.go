package multiedge

// Detector finds moving objects by background subtraction: pixels that differ from the camera's
// empty-scene reference by more than Threshold (sum of absolute channel differences) are
// foreground, and each 8-connected foreground region of at least MinArea pixels is one detection.
type Detector struct {
	Background *Image
	Threshold  int
	MinArea    int
}

// Detect returns the bounding boxes of the frame's foreground regions, in scan order.
func (d *Detector) Detect(frame *Image) []Box {
	width, height := frame.Width, frame.Height
	if d.Background == nil || d.Background.Width != width || d.Background.Height != height {
		return nil
	}
	foreground := make([]bool, width*height)
	for i := range foreground {
		diff := 0
		for c := 0; c < 3; c++ {
			delta := int(frame.RGB[i*3+c]) - int(d.Background.RGB[i*3+c])
			if delta < 0 {
				delta = -delta
			}
			diff += delta
		}
		foreground[i] = diff > d.Threshold
	}
	var boxes []Box
	visited := make([]bool, width*height)
	stack := make([]int, 0, 256)
	for start := range foreground {
		if !foreground[start] || visited[start] {
			continue
		}
		visited[start] = true
		stack = append(stack[:0], start)
		x0, y0, x1, y1, area := width, height, -1, -1, 0
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := i%width, i/width
			area++
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= width || ny >= height {
						continue
					}
					j := ny*width + nx
					if foreground[j] && !visited[j] {
						visited[j] = true
						stack = append(stack, j)
					}
				}
			}
		}
		if area >= d.MinArea {
			boxes = append(boxes, Box{X: x0, Y: y0, W: x1 - x0 + 1, H: y1 - y0 + 1})
		}
	}
	return boxes
}
