from lynkr.cli import main

raise SystemExit(main())
