/* noop: the trivial qmail-spp plugin (prints nothing, exits 0 = accept and go on). Used by
 * the concurrency tests and by bench/ to measure what one plugin run costs. */
int main(void) { return 0; }
