from securexport.cli import entry

entry()
