from passport.cli import app

app()
