from dr.cli import main

raise SystemExit(main())
