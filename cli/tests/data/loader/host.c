// Compiled for the host (x86-64): a valid ELF that is not BPF.
int answer(void) { return 42; }
