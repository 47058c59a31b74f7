package picker

// PickRun reserves for a web seed (BEP 19) up to maxPieces contiguous whole pieces that are
// missing and that no peer has started, and returns the first index and the count; ok is false
// when there is none. It takes the lowest such run: a web server reads files sequentially and
// peers meanwhile pick the rarest pieces, scattered at random, so the two rarely compete. Peers
// are never given reserved pieces. Release the reservation piece by piece with PieceVerified or
// PieceFailed, and what is left with RunDone or RunFailed. Cost: O(pieces skipped + count).
func (p *Picker) PickRun(maxPieces int) (first, count int, ok bool) {
	if maxPieces <= 0 {
		return 0, 0, false
	}
	i := p.runFrom
	for i < p.numPieces && p.state[i] != candidate {
		i++
	}
	p.runFrom = i
	if i == p.numPieces {
		return 0, 0, false
	}
	j := i
	for j < p.numPieces && j-i < maxPieces && p.state[j] == candidate {
		p.leaveCandidates(j, reserved)
		j++
	}
	return i, j - i, true
}

// RunFailed returns the pieces of the run [first, first+count) that are still reserved (not
// verified, not failed one by one) to the pool: the web seed failed or was given up.
func (p *Picker) RunFailed(first, count int) {
	for i := max(first, 0); i < min(first+count, p.numPieces); i++ {
		if p.state[i] == reserved {
			p.enterCandidates(i)
		}
	}
}

// RunDone ends the run [first, first+count) after its pieces were handed to PieceVerified or
// PieceFailed; any piece of it still reserved goes back to the pool, as with RunFailed.
func (p *Picker) RunDone(first, count int) { p.RunFailed(first, count) }
