package main

import "testing"

// The floors are computed from the measured rates: the 10,000-user v6 run of 2026-12-04.
func TestFloors(t *testing.T) {
	r := &caseResult{LatencyS: 1.2, cycleResult: cycleResult{Changed: 3306, MMWrites: 6612, CycleS: 11.07}}
	r.floors(&writesResult{CeilingPerS: 3038.3, ChangesPerS: map[string]float64{"calstatus": 489.8}})
	if r.FloorS != 3.38 || r.OverFloor != 3.28 || r.ServerFloorS != 7.95 || r.OverServerFloor != 1.39 {
		t.Errorf("floors = %v (%v×), server %v (%v×); want 3.38 (3.28×), server 7.95 (1.39×)",
			r.FloorS, r.OverFloor, r.ServerFloorS, r.OverServerFloor)
	}
	// Without measured rates there is no floor, rather than a division by zero.
	r = &caseResult{LatencyS: 1.2, cycleResult: cycleResult{Changed: 1, MMWrites: 2, CycleS: 2}}
	r.floors(&writesResult{})
	if r.FloorS != 0 || r.OverFloor != 0 || r.ServerFloorS != 0 {
		t.Errorf("floors without rates = %+v; want none", r)
	}
}
