// SPDX-License-Identifier: MIT
/*
 * main() for replaying fuzz inputs without libFuzzer: linked with any
 * fuzz/<name>_fuzz.c into build/fuzz/<name>_replay, it feeds each file named
 * on the command line to LLVMFuzzerTestOneInput once. make test replays every
 * corpus (and kept crash inputs) this way under ASan+UBSan.
 */
#include <stdint.h>
#include <stdio.h>

#define REPLAY_INPUT_MAX (4 << 20)	/* bytes of one input; the harnesses cap lower */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	static uint8_t buf[REPLAY_INPUT_MAX];
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			perror(argv[i]);
			return 1;
		}
		size_t n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("%s: replayed %d input(s)\n", argv[0], argc - 1);
	return 0;
}
