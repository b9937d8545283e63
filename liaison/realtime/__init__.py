"""Real time: the room WebSocket, its frames, routing, socket admission, presence and daphne patches."""
