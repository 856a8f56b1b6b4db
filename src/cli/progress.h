// progress.h — one line of training progress, e.g.
//   step   120/1000 [####........]  12% | loss 2.3456 | val 2.104 bpb | 24.1k tok/s | 0:41 elapsed, ETA 5:02
// grape train redraws it in place on a terminal and prints plain lines otherwise; compare and eval use the duration.
#ifndef GRAPE_CLI_PROGRESS_H
#define GRAPE_CLI_PROGRESS_H

#include <stddef.h>

#include "grape.h"

// Seconds as "m:ss" or "h:mm:ss" into buf (at least 16 bytes).
void progress_duration(char *buf, size_t n, double seconds);
// The line above into buf; bar_width 0 leaves the bar out.
void progress_format(char *buf, size_t n, const grape_train_report *r, int bar_width);

#endif
