"""The web console for officers, legal reviewers and the command center: not built yet."""
