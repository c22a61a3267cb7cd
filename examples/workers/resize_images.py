"""Example worker: pretends to resize a batch of images, reporting progress as it goes."""

import time

from jobvisor_worker import Job, run_job


def main(job: Job) -> dict:
    images = job.data.get("images", ["a.png", "b.png", "c.png", "d.png"])
    sizes = job.data.get("sizes", [64, 256])
    done = []
    for index, image in enumerate(images, start=1):
        for size in sizes:
            time.sleep(0.15)  # the "work"
            done.append(f"{image}@{size}")
        job.progress(100 * index / len(images), f"resized {image}", image=image)
        job.info(f"resized {image}", sizes=sizes)
    return {"thumbnails": done}


if __name__ == "__main__":
    run_job(main)
