"""multiprocessing.Pool, unmodified: worker processes fed through pipes and named
semaphores (process-shared), and three handler threads in the parent, one of which
polls in a loop that only another thread's reads can end."""
import multiprocessing as mp

if __name__ == "__main__":
    with mp.Pool(2) as pool:
        print(sum(pool.map(abs, range(-100, 100))), flush=True)
        print(sorted(pool.imap_unordered(len, ["a", "bb", "ccc"])), flush=True)
    print("closed", flush=True)
