package multiedge

import "math"

// Assign solves the rectangular assignment problem: it returns, for each row of cost, the column
// assigned to it (or -1 when there are more rows than columns), minimising the total cost. Costs
// of +Inf forbid a pairing; a row whose only options are forbidden stays unassigned (-1). It is
// the Hungarian method with potentials, O(n²m).
func Assign(cost [][]float64) []int {
	rows := len(cost)
	if rows == 0 {
		return nil
	}
	cols := len(cost[0])
	result := make([]int, rows)
	for i := range result {
		result[i] = -1
	}
	if cols == 0 {
		return result
	}
	// Forbidden pairs get a cost above any sum of allowed ones, then are dropped afterwards.
	big := 1.0
	for _, row := range cost {
		for _, c := range row {
			if !math.IsInf(c, 1) {
				big += math.Abs(c)
			}
		}
	}
	transposed := rows > cols
	n, m := rows, cols
	at := func(i, j int) float64 {
		var c float64
		if transposed {
			c = cost[j][i]
		} else {
			c = cost[i][j]
		}
		if math.IsInf(c, 1) {
			return big
		}
		return c
	}
	if transposed {
		n, m = cols, rows
	}
	// 1-based arrays as in the classic formulation; p[j] is the row matched to column j.
	u, v := make([]float64, n+1), make([]float64, m+1)
	p, way := make([]int, m+1), make([]int, m+1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		minv := make([]float64, m+1)
		used := make([]bool, m+1)
		for j := range minv {
			minv[j] = math.Inf(1)
		}
		for {
			used[j0] = true
			i0, delta, j1 := p[j0], math.Inf(1), 0
			for j := 1; j <= m; j++ {
				if used[j] {
					continue
				}
				cur := at(i0-1, j-1) - u[i0] - v[j]
				if cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= m; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	for j := 1; j <= m; j++ {
		if p[j] == 0 {
			continue
		}
		row, col := p[j]-1, j-1
		if transposed {
			row, col = col, row
		}
		if !math.IsInf(cost[row][col], 1) {
			result[row] = col
		}
	}
	return result
}
