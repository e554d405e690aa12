/* tests/it/pccs_server.py (recorded PCS responses, tests/data/pccs) as a child process of a unit
 * test. Include after cmocka's headers; failures fail the test. */
#pragma once

/* Starts it (at most ~15 s) and waits for its port. */
void pccs_stub_start(void);
/* Stops it (closing its stdin; killed after 5 s). */
void pccs_stub_stop(void);
/* Base URL of a recorded set: "http://127.0.0.1:PORT/<set>" (static storage). */
const char *pccs_stub_base(const char *set);
/* GET of a control path ("/__fail?on=1", "/__delay?ms=500", "/__reset"), expecting 200. */
void pccs_stub_control(const char *path);
/* Collateral requests served so far (control paths not counted). */
int pccs_stub_requests(void);
