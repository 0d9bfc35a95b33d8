/* Usage: ctor_threads LIBRARY. dlopens LIBRARY (ctor_threads_lib.c), whose constructor
 * creates the process's first threads, and prints what they computed. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) {
        printf("dlopen: %s\n", dlerror());
        return 1;
    }
    long *total = dlsym(lib, "ctor_threads_total");
    printf("the constructor's threads computed %ld\n", total ? *total : -1);
    return 0;
}
