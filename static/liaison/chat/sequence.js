// Which part of the room's record the page holds, and whether it must ask for more.
//
// Every message carries a per-room seq. The page keeps the highest contiguous seq it holds
// (lastSeq) and asks `sync {after_seq: lastSeq}` for anything missing: after a reconnect, or
// when a live message jumps ahead because the channel layer dropped one. No DOM.

export class SeqTracker {
  constructor(lastSeq = 0) {
    this.lastSeq = lastSeq; // highest contiguous seq held
    this.minSeq = null; // lowest seq held
    this.held = new Map(); // seq -> provisional (shown at ack time, not yet the stored copy)
    this.syncing = false;
    this.resyncWanted = false;
    this.syncFrom = 0;
    this.caughtUp = false; // a sync has completed at least once
  }

  // A live message past lastSeq + 1 means something in between was lost on the way.
  jumpsAhead(seq) {
    return seq > this.lastSeq + 1;
  }

  hold(seq, provisional = false) {
    this.held.set(seq, Boolean(provisional));
    if (this.minSeq === null || seq < this.minSeq) this.minSeq = seq;
    // A provisional copy does not count as held: sync fetches the record.
    for (;;) {
      const next = this.held.get(this.lastSeq + 1);
      if (next === undefined || next) break;
      this.lastSeq += 1;
    }
  }

  hasEarlier() {
    return this.minSeq !== null && this.minSeq > 1;
  }

  holdsStart() {
    return this.minSeq === 1;
  }

  // May a sync go out now? While one is running, note that another is wanted after it.
  maySync() {
    if (this.syncing) {
      this.resyncWanted = true;
      return false;
    }
    return true;
  }

  syncSent() {
    this.syncing = true;
    this.resyncWanted = false;
    this.syncFrom = this.lastSeq;
  }

  // The server's sync.done: true when another sync should follow. Ask again for what is still
  // missing, but never loop on a sync that brought nothing.
  syncDone(serverLastSeq) {
    this.syncing = false;
    this.caughtUp = true;
    const serverLast = Number(serverLastSeq);
    const progressed = this.lastSeq > this.syncFrom;
    const behind = Number.isFinite(serverLast) && serverLast > this.lastSeq;
    return this.resyncWanted || (behind && progressed);
  }

  // The connection closed or the server refused: the running sync will not finish.
  syncAbandoned() {
    this.syncing = false;
  }
}
