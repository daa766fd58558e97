/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Out-of-line copies of the static inline functions and macros ferrofs's Rust
 * code needs. Each is a one-line wrapper: no logic lives here.
 */
#ifndef FERROFS_SHIMS_H
#define FERROFS_SHIMS_H
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/mm.h>
#include <linux/dax.h>
#include <linux/blkdev.h>

loff_t ferrofs_i_size_read(const struct inode *inode);
void ferrofs_i_size_write(struct inode *inode, loff_t size);
void ferrofs_inode_lock(struct inode *inode);
void ferrofs_inode_unlock(struct inode *inode);
void ferrofs_inode_lock_shared(struct inode *inode);
void ferrofs_inode_unlock_shared(struct inode *inode);
/* the second of two inodes (lock_two_nondirectories' lockdep subclass) */
void ferrofs_inode_lock_nondir2(struct inode *inode);
void ferrofs_inode_lock_shared_nondir2(struct inode *inode);
void ferrofs_invalidate_lock(struct inode *inode);
void ferrofs_invalidate_unlock(struct inode *inode);
void ferrofs_invalidate_lock_shared(struct inode *inode);
void ferrofs_invalidate_unlock_shared(struct inode *inode);
uid_t ferrofs_i_uid_read(const struct inode *inode);
gid_t ferrofs_i_gid_read(const struct inode *inode);
void ferrofs_i_uid_write(struct inode *inode, uid_t uid);
void ferrofs_i_gid_write(struct inode *inode, gid_t gid);
/* which: 0 atime, 1 mtime, 2 ctime */
void ferrofs_inode_set_time(struct inode *inode, int which, s64 sec, u32 nsec);
void ferrofs_inode_get_time(const struct inode *inode, int which, s64 *sec, u32 *nsec);
struct inode *ferrofs_d_inode(const struct dentry *dentry);
struct inode *ferrofs_file_inode(const struct file *file);
loff_t ferrofs_bdev_nr_bytes(struct block_device *bdev);
bool ferrofs_bdev_dax_capable(struct block_device *bdev);
bool ferrofs_bdev_read_only(struct block_device *bdev);
bool ferrofs_dir_emit(struct dir_context *ctx, const char *name, int len, u64 ino, unsigned type);
bool ferrofs_dir_emit_dots(struct file *file, struct dir_context *ctx);
bool ferrofs_is_dax(const struct inode *inode);
void ferrofs_vm_flags_set(struct vm_area_struct *vma, unsigned long flags);
dev_t ferrofs_decode_dev(u32 dev);
u32 ferrofs_encode_dev(dev_t dev);

void ferrofs_sb_start_pagefault(struct super_block *sb);
void ferrofs_sb_end_pagefault(struct super_block *sb);
void ferrofs_sb_start_intwrite(struct super_block *sb);
void ferrofs_sb_end_intwrite(struct super_block *sb);
void ferrofs_file_accessed(struct file *file);
bool ferrofs_file_writable(const struct file *file);
bool ferrofs_inode_append_or_immutable(const struct inode *inode);
bool ferrofs_fatal_signal_pending(void);
void ferrofs_cond_resched(void);
ssize_t ferrofs_generic_write_sync(struct kiocb *iocb, ssize_t count);
struct inode *ferrofs_vmf_inode(struct vm_fault *vmf);
bool ferrofs_vmf_write_shared(struct vm_fault *vmf);
int ferrofs_break_layouts(struct inode *inode, loff_t start, loff_t end);
int ferrofs_finish_open_simple(struct file *file, int error);
/*
 * security_inode_init_security (a static inline without CONFIG_SECURITY):
 * the LSMs' initial security.* attributes of a new inode, handed to
 * initxattrs. qstr may be NULL (O_TMPFILE).
 */
struct xattr;
int ferrofs_init_security(struct inode *inode, struct inode *dir, const struct qstr *qstr,
			  int (*initxattrs)(struct inode *, const struct xattr *, void *), void *fs_data);
struct posix_acl;
void ferrofs_posix_acl_release(struct posix_acl *acl);
size_t ferrofs_posix_acl_xattr_size(int count);

unsigned int ferrofs_memalloc_nofs_save(void);
void ferrofs_memalloc_nofs_restore(unsigned int flags);
void ferrofs_unmap_all(struct super_block *sb, bool pre_remove);
/* FS_ERROR for fanotify: inode NULL for the filesystem; error positive. */
int ferrofs_fsnotify_sb_error(struct super_block *sb, struct inode *inode, int error);

/* Persistent-memory primitives for the engine's media. */
void ferrofs_memcpy_flushcache(void *dst, const void *src, size_t len);
void ferrofs_wb_cache_pmem(void *addr, size_t len);
void ferrofs_pmem_wmb(void);
unsigned long ferrofs_copy_mc_to_kernel(void *dst, const void *src, size_t len);
/*
 * Fault injection of our own: /sys/kernel/debug/ferrofs/fail_media_load is
 * a standard fault_attr (probability, times, space, task-filter, ...) that
 * makes an engine load from pmem fail as a machine check would. The engine
 * allocates nothing, so failslab cannot reach reflink, CoW or the btrees;
 * this can. Without CONFIG_FAULT_INJECTION it never fails.
 */
struct dentry;
bool ferrofs_should_fail_media_load(size_t len);
void ferrofs_fault_debugfs(struct dentry *parent);

struct kmem_cache;
struct kmem_cache *ferrofs_inode_cache_create(unsigned int size);
void *ferrofs_inode_cache_alloc(struct kmem_cache *cache, struct super_block *sb);
void ferrofs_holder_lock(void);
void ferrofs_holder_unlock(void);

/* init_rwsem() is a macro with a static lock class per call site: every
 * mount's engine lock is one lockdep class, "ferrofs engine". */
struct rw_semaphore;
void ferrofs_init_engine_rwsem(struct rw_semaphore *sem);

/* Disk quotas: see shims.c. */
struct quotactl_ops;
struct dquot_operations;
struct kstatfs;
void ferrofs_sb_set_quota(struct super_block *sb, const struct quotactl_ops *qcop,
			  const struct dquot_operations *dqop);
void ferrofs_make_kprojid(kprojid_t *out, u32 projid);
int ferrofs_dquot_transfer_project(struct inode *inode, u32 projid);
void ferrofs_statfs_project(struct super_block *sb, u32 projid, struct kstatfs *buf);
struct inode *ferrofs_quota_inode(struct super_block *sb, int type);
bool ferrofs_quota_limits_may_apply(struct inode *inode);
int ferrofs_quota_on_mount(struct super_block *sb, int type);
bool ferrofs_quota_loaded(struct super_block *sb, int type);
int ferrofs_quota_set_usage(struct super_block *sb, int type, u32 id, u64 bytes, u64 inodes);
int ferrofs_quota_next_id(struct super_block *sb, int type, u32 *id);
int ferrofs_dquot_suspend(struct super_block *sb);
int ferrofs_dquot_resume(struct super_block *sb);
int ferrofs_dquot_disable_all(struct super_block *sb);
int ferrofs_dquot_writeback(struct super_block *sb);
void ferrofs_dquot_drop(struct inode *inode);
int ferrofs_dquot_initialize(struct inode *inode);
int ferrofs_dquot_alloc_inode(struct inode *inode);
void ferrofs_dquot_free_inode(struct inode *inode);
int ferrofs_dquot_alloc_space(struct inode *inode, loff_t bytes);
void ferrofs_dquot_alloc_space_nofail(struct inode *inode, loff_t bytes);
void ferrofs_dquot_free_space(struct inode *inode, loff_t bytes);
loff_t ferrofs_inode_get_bytes(struct inode *inode);
struct file;
int ferrofs_dquot_file_open(struct inode *inode, struct file *file);
struct mnt_idmap;
struct iattr;
bool ferrofs_is_quota_modification(struct mnt_idmap *idmap, struct inode *inode, struct iattr *ia);
int ferrofs_dquot_transfer(struct mnt_idmap *idmap, struct inode *inode, struct iattr *ia);
void ferrofs_sb_clear_rdonly(struct super_block *sb);

#endif
