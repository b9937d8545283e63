// Catching up from the record: `sync {after_seq}` for whatever the live stream missed, and
// `history` pages for older messages (or the newest page again after a reconnect, which brings
// the edits and deletions a seq-only sync cannot).

export class Catchup {
  // seqs: the SeqTracker; list: the MessageList; send(frame) -> bool; caughtUp() after each
  // completed sync.
  constructor({ seqs, list, send, pageSize, caughtUp }) {
    this.seqs = seqs;
    this.list = list;
    this.send = send;
    this.pageSize = pageSize;
    this.caughtUp = caughtUp;
    this.historyPending = false;
    this.historyQueue = []; // what each history request on this socket was for
  }

  connected() {
    this.seqs.syncAbandoned();
    this.historyQueue = [];
    this.requestSync();
    if (this.seqs.caughtUp) {
      if (this.send({ type: "history", limit: this.pageSize })) this.historyQueue.push("refresh");
    }
  }

  lost() {
    this.seqs.syncAbandoned();
    this.historyDone();
  }

  requestSync() {
    if (!this.seqs.maySync()) return;
    if (this.send({ type: "sync", after_seq: this.seqs.lastSeq })) this.seqs.syncSent();
  }

  // A live message: if it jumps past what is held, fetch the gap from the record.
  received(message) {
    const jumped = this.seqs.jumpsAhead(message.seq);
    this.list.upsert(message);
    if (jumped) this.requestSync();
  }

  syncDone(lastSeq) {
    const again = this.seqs.syncDone(lastSeq);
    this.caughtUp();
    if (again) this.requestSync();
    this.list.updateEarlier();
  }

  loadEarlier() {
    const seqs = this.seqs;
    if (this.historyPending || seqs.minSeq === null || seqs.minSeq <= 1) return;
    const frame = { type: "history", before_seq: seqs.minSeq, limit: this.pageSize };
    if (this.send(frame)) {
      this.historyQueue.push("earlier");
      this.historyPending = true;
      this.list.earlierLoading(true);
    }
  }

  historyDone() {
    this.historyPending = false;
    this.list.earlierLoading(false);
  }

  history(messages) {
    if (this.historyQueue.shift() === "refresh") {
      messages.forEach((message) => this.list.upsert(message));
      return;
    }
    this.historyDone();
    this.list.keepingScroll(() => messages.forEach((message) => this.list.upsert(message)));
    this.list.updateEarlier();
  }

  // An error frame not about a message of ours may answer our sync or history request: let
  // them be asked again.
  refused() {
    if (this.seqs.syncing) {
      this.seqs.syncAbandoned();
      setTimeout(() => this.requestSync(), 3000);
    }
    if (this.historyPending) this.historyDone();
  }
}
