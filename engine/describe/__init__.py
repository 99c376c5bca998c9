"""Text bridge: frames, an image or text -> MusicDescription (draft and full backends)."""
