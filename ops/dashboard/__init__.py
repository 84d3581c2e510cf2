"""The live web dashboard of the loop: read-model views, board replays, the web app, the page."""
