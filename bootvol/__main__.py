from bootvol.cli.app import main

main()
