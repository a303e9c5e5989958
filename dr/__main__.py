from dr import cli

raise SystemExit(cli.main())
