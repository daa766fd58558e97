// SPDX-License-Identifier: GPL-2.0
/*
 * Out-of-line copies of static inline kernel helpers for ferrofs's Rust code.
 * Keep this file free of logic: one call per function.
 */
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/dax.h>
#include <linux/blkdev.h>
#include <linux/libnvdimm.h>
#include <linux/uaccess.h>
#include <linux/kdev_t.h>
#include <linux/pagemap.h>
#include <linux/wait_bit.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/debugfs.h>
#include <linux/fault-inject.h>
#include <linux/fsnotify.h>
#include <linux/security.h>
#include <linux/xattr.h>
#include <linux/quotaops.h>
#include <linux/statfs.h>
#include "shims.h"

loff_t ferrofs_i_size_read(const struct inode *inode) { return i_size_read(inode); }
void ferrofs_i_size_write(struct inode *inode, loff_t size) { i_size_write(inode, size); }
void ferrofs_inode_lock(struct inode *inode) { inode_lock(inode); }
void ferrofs_inode_unlock(struct inode *inode) { inode_unlock(inode); }
void ferrofs_inode_lock_shared(struct inode *inode) { inode_lock_shared(inode); }
void ferrofs_inode_unlock_shared(struct inode *inode) { inode_unlock_shared(inode); }
void ferrofs_inode_lock_nondir2(struct inode *inode) { inode_lock_nested(inode, I_MUTEX_NONDIR2); }
void ferrofs_inode_lock_shared_nondir2(struct inode *inode) { inode_lock_shared_nested(inode, I_MUTEX_NONDIR2); }
void ferrofs_invalidate_lock(struct inode *inode) { filemap_invalidate_lock(inode->i_mapping); }
void ferrofs_invalidate_unlock(struct inode *inode) { filemap_invalidate_unlock(inode->i_mapping); }
void ferrofs_invalidate_lock_shared(struct inode *inode) { filemap_invalidate_lock_shared(inode->i_mapping); }
void ferrofs_invalidate_unlock_shared(struct inode *inode) { filemap_invalidate_unlock_shared(inode->i_mapping); }
uid_t ferrofs_i_uid_read(const struct inode *inode) { return i_uid_read(inode); }
gid_t ferrofs_i_gid_read(const struct inode *inode) { return i_gid_read(inode); }
void ferrofs_i_uid_write(struct inode *inode, uid_t uid) { i_uid_write(inode, uid); }
void ferrofs_i_gid_write(struct inode *inode, gid_t gid) { i_gid_write(inode, gid); }

void ferrofs_inode_set_time(struct inode *inode, int which, s64 sec, u32 nsec)
{
	struct timespec64 ts = { .tv_sec = sec, .tv_nsec = nsec };

	if (which == 0)
		inode_set_atime_to_ts(inode, ts);
	else if (which == 1)
		inode_set_mtime_to_ts(inode, ts);
	else
		inode_set_ctime_to_ts(inode, ts);
}

void ferrofs_inode_get_time(const struct inode *inode, int which, s64 *sec, u32 *nsec)
{
	struct timespec64 ts = which == 0 ? inode_get_atime(inode) :
			       which == 1 ? inode_get_mtime(inode) : inode_get_ctime(inode);
	*sec = ts.tv_sec;
	*nsec = ts.tv_nsec;
}

struct inode *ferrofs_d_inode(const struct dentry *dentry) { return d_inode(dentry); }
struct inode *ferrofs_file_inode(const struct file *file) { return file_inode(file); }
loff_t ferrofs_bdev_nr_bytes(struct block_device *bdev) { return bdev_nr_bytes(bdev); }
bool ferrofs_bdev_dax_capable(struct block_device *bdev) { return blk_queue_dax(bdev_get_queue(bdev)); }
bool ferrofs_bdev_read_only(struct block_device *bdev) { return bdev_read_only(bdev); }
bool ferrofs_dir_emit(struct dir_context *ctx, const char *name, int len, u64 ino, unsigned type)
{
	return dir_emit(ctx, name, len, ino, type);
}
bool ferrofs_dir_emit_dots(struct file *file, struct dir_context *ctx) { return dir_emit_dots(file, ctx); }
bool ferrofs_is_dax(const struct inode *inode) { return IS_DAX(inode); }
void ferrofs_vm_flags_set(struct vm_area_struct *vma, unsigned long flags) { vm_flags_set(vma, flags); }
dev_t ferrofs_decode_dev(u32 dev) { return new_decode_dev(dev); }
u32 ferrofs_encode_dev(dev_t dev) { return new_encode_dev(dev); }

void ferrofs_sb_start_pagefault(struct super_block *sb) { sb_start_pagefault(sb); }
void ferrofs_sb_end_pagefault(struct super_block *sb) { sb_end_pagefault(sb); }
void ferrofs_sb_start_intwrite(struct super_block *sb) { sb_start_intwrite(sb); }
void ferrofs_sb_end_intwrite(struct super_block *sb) { sb_end_intwrite(sb); }
void ferrofs_file_accessed(struct file *file) { file_accessed(file); }
bool ferrofs_file_writable(const struct file *file) { return file->f_mode & FMODE_WRITE; }
bool ferrofs_inode_append_or_immutable(const struct inode *inode)
{
	return IS_APPEND(inode) || IS_IMMUTABLE(inode);
}
bool ferrofs_fatal_signal_pending(void) { return fatal_signal_pending(current); }
ssize_t ferrofs_generic_write_sync(struct kiocb *iocb, ssize_t count) { return generic_write_sync(iocb, count); }
struct inode *ferrofs_vmf_inode(struct vm_fault *vmf) { return file_inode(vmf->vma->vm_file); }
bool ferrofs_vmf_write_shared(struct vm_fault *vmf)
{
	return (vmf->flags & FAULT_FLAG_WRITE) && (vmf->vma->vm_flags & VM_SHARED);
}

/*
 * Wait until no page of [start, end) is pinned (GUP: O_DIRECT into a DAX
 * mapping, RDMA) so its blocks can be unmapped and freed. Called with the
 * inode's invalidate lock held exclusively; drops it while waiting, like
 * xfs_break_dax_layouts. The wait itself is a macro, hence C.
 */
int ferrofs_break_layouts(struct inode *inode, loff_t start, loff_t end)
{
	struct page *page;
	int error;

	for (;;) {
		page = dax_layout_busy_page_range(inode->i_mapping, start, end);
		if (!page)
			return 0;
		error = ___wait_var_event(&page->_refcount,
				atomic_read(&page->_refcount) == 1, TASK_INTERRUPTIBLE,
				0, 0, (filemap_invalidate_unlock(inode->i_mapping), schedule(),
				       filemap_invalidate_lock(inode->i_mapping)));
		if (error)
			return error;
	}
}

int ferrofs_finish_open_simple(struct file *file, int error) { return finish_open_simple(file, error); }
int ferrofs_init_security(struct inode *inode, struct inode *dir, const struct qstr *qstr,
			  int (*initxattrs)(struct inode *, const struct xattr *, void *), void *fs_data)
{
	return security_inode_init_security(inode, dir, qstr, initxattrs, fs_data);
}
void ferrofs_posix_acl_release(struct posix_acl *acl) { posix_acl_release(acl); }
size_t ferrofs_posix_acl_xattr_size(int count) { return posix_acl_xattr_size(count); }
#ifdef CONFIG_FAULT_INJECTION
static DECLARE_FAULT_ATTR(ferrofs_fail_media_load);

bool ferrofs_should_fail_media_load(size_t len)
{
	return should_fail(&ferrofs_fail_media_load, len);
}

void ferrofs_fault_debugfs(struct dentry *parent)
{
#ifdef CONFIG_FAULT_INJECTION_DEBUG_FS
	/* an ERR_PTR on failure: debugfs is optional, nothing to undo */
	fault_create_debugfs_attr("fail_media_load", parent, &ferrofs_fail_media_load);
#endif
}
#else
bool ferrofs_should_fail_media_load(size_t len) { return false; }
void ferrofs_fault_debugfs(struct dentry *parent) { }
#endif

unsigned int ferrofs_memalloc_nofs_save(void) { return memalloc_nofs_save(); }
void ferrofs_memalloc_nofs_restore(unsigned int flags) { memalloc_nofs_restore(flags); }

/*
 * Device removal / metadata failure: remove every user page-table entry and
 * every DAX entry of every regular file while the device's struct pages
 * still exist (after removal, dropping an entry would touch freed memmap),
 * so nothing keeps loads/stores on pmem we stop owning. The exclusive
 * invalidate lock waits for faults in flight; new ones fail (shut down).
 * With pre_remove, every mapper is also signalled first, whatever its kill
 * policy: its mapping is about to go away, not just one page.
 * The walk over sb->s_inodes is list and spinlock macros, hence C; it is the
 * pattern of drop_pagecache_sb().
 */
void ferrofs_unmap_all(struct super_block *sb, bool pre_remove)
{
	struct inode *inode, *toput = NULL;

	spin_lock(&sb->s_inode_list_lock);
	list_for_each_entry(inode, &sb->s_inodes, i_sb_list) {
		spin_lock(&inode->i_lock);
		if ((inode->i_state & (I_FREEING | I_WILL_FREE | I_NEW)) || !S_ISREG(inode->i_mode)) {
			spin_unlock(&inode->i_lock);
			continue;
		}
		__iget(inode);
		spin_unlock(&inode->i_lock);
		spin_unlock(&sb->s_inode_list_lock);
		iput(toput);
		/*
		 * Device removal: signal every process mapping the file
		 * (BUS_MCEERR_AO), as mf_dax_kill_procs does for XFS; the
		 * memory itself is not poisoned, so no page is marked.
		 */
		if (pre_remove)
			mf_dax_kill_procs(inode->i_mapping, 0,
					  DIV_ROUND_UP(i_size_read(inode), PAGE_SIZE),
					  MF_MEM_PRE_REMOVE);
		filemap_invalidate_lock(inode->i_mapping);
		unmap_mapping_range(inode->i_mapping, 0, 0, 1);
		truncate_inode_pages(inode->i_mapping, 0);
		filemap_invalidate_unlock(inode->i_mapping);
		toput = inode;
		cond_resched();
		spin_lock(&sb->s_inode_list_lock);
	}
	spin_unlock(&sb->s_inode_list_lock);
	iput(toput);
}

void ferrofs_cond_resched(void) { cond_resched(); }
void ferrofs_memcpy_flushcache(void *dst, const void *src, size_t len) { memcpy_flushcache(dst, src, len); }
void ferrofs_wb_cache_pmem(void *addr, size_t len) { arch_wb_cache_pmem(addr, len); }
void ferrofs_pmem_wmb(void) { pmem_wmb(); }
unsigned long ferrofs_copy_mc_to_kernel(void *dst, const void *src, size_t len)
{
	return copy_mc_to_kernel(dst, src, len);
}

int ferrofs_fsnotify_sb_error(struct super_block *sb, struct inode *inode, int error)
{
	return fsnotify_sb_error(sb, inode, error);
}

/*
 * The ferrofs inode cache: objects are struct ferrofs InodeBox (Rust), whose
 * first field is the struct inode, so the constructor can treat the object
 * as one (as every filesystem's inode cache constructor does).
 */
static void ferrofs_inode_ctor(void *obj) { inode_init_once(obj); }

struct kmem_cache *ferrofs_inode_cache_create(unsigned int size)
{
	return kmem_cache_create("ferrofs_inode", size, 0,
				 SLAB_RECLAIM_ACCOUNT | SLAB_ACCOUNT, ferrofs_inode_ctor);
}

void *ferrofs_inode_cache_alloc(struct kmem_cache *cache, struct super_block *sb)
{
	return alloc_inode_sb(sb, cache, GFP_KERNEL);
}

/*
 * Serialises the dax holder callback (notify_failure) against the mount
 * publishing and releasing its state and its dax_device claim: the callback
 * reads holder_data -> super_block -> s_fs_info under it.
 */
static DEFINE_MUTEX(ferrofs_holder_mutex);
void ferrofs_holder_lock(void) { mutex_lock(&ferrofs_holder_mutex); }
void ferrofs_holder_unlock(void) { mutex_unlock(&ferrofs_holder_mutex); }

void ferrofs_init_engine_rwsem(struct rw_semaphore *sem)
{
	static struct lock_class_key key;

	__init_rwsem(sem, "ferrofs_engine", &key);
}

/*
 * Disk quotas (the VFS quota layer, visible vfsv0/vfsv1 files). Without
 * CONFIG_QUOTA quotaops.h makes these calls no-ops, and ferrofs refuses the
 * quota mount options before any of them could matter.
 */
void ferrofs_sb_set_quota(struct super_block *sb, const struct quotactl_ops *qcop,
			  const struct dquot_operations *dqop)
{
#ifdef CONFIG_QUOTA
	sb->dq_op = dqop;
	sb->s_qcop = qcop;
	sb->s_quota_types = QTYPE_MASK_USR | QTYPE_MASK_GRP | QTYPE_MASK_PRJ;
#endif
}
/* dquot_operations.get_projid's answer: project ID in the initial user
 * namespace, where project IDs live (the VFS lets no other change them). */
void ferrofs_make_kprojid(kprojid_t *out, u32 projid)
{
	*out = make_kprojid(&init_user_ns, projid);
}
/*
 * FS_IOC_FSSETXATTR changing the project ID: moves the inode's usage
 * (blocks and the inode) from its project's dquot to PROJID's, as
 * ext4_ioctl_setproject does; EDQUOT if that project is over its limit.
 * Nothing to move while project quota is off (dqget says -ESRCH).
 */
int ferrofs_dquot_transfer_project(struct inode *inode, u32 projid)
{
#ifdef CONFIG_QUOTA
	struct dquot *to[MAXQUOTAS] = {};
	int err = dquot_initialize(inode);

	if (err)
		return err;
	to[PRJQUOTA] = dqget(inode->i_sb, make_kqid_projid(make_kprojid(&init_user_ns, projid)));
	if (IS_ERR(to[PRJQUOTA]))
		return PTR_ERR(to[PRJQUOTA]) == -ESRCH ? 0 : PTR_ERR(to[PRJQUOTA]);
	err = __dquot_transfer(inode, to);
	dqput(to[PRJQUOTA]);
	return err;
#else
	return 0;
#endif
}
/*
 * statfs of a directory with PROJINHERIT while project quota is enforced:
 * the project's limits and usage cap what statfs reports (as on ext4 and
 * XFS), so df inside a project directory shows the project's share.
 */
void ferrofs_statfs_project(struct super_block *sb, u32 projid, struct kstatfs *buf)
{
#ifdef CONFIG_QUOTA
	struct dquot *dq;
	u64 limit, used, left;

	if (!sb_has_quota_limits_enabled(sb, PRJQUOTA))
		return;
	dq = dqget(sb, make_kqid_projid(make_kprojid(&init_user_ns, projid)));
	if (IS_ERR(dq))
		return;
	spin_lock(&dq->dq_dqb_lock);
	limit = min_not_zero(dq->dq_dqb.dqb_bsoftlimit, dq->dq_dqb.dqb_bhardlimit) >> sb->s_blocksize_bits;
	if (limit) {
		used = (dq->dq_dqb.dqb_curspace + dq->dq_dqb.dqb_rsvspace) >> sb->s_blocksize_bits;
		left = limit > used ? limit - used : 0;
		buf->f_blocks = min(buf->f_blocks, limit);
		buf->f_bfree = min(buf->f_bfree, left);
		buf->f_bavail = min(buf->f_bavail, left);
	}
	limit = min_not_zero(dq->dq_dqb.dqb_isoftlimit, dq->dq_dqb.dqb_ihardlimit);
	if (limit) {
		used = dq->dq_dqb.dqb_curinodes;
		left = limit > used ? limit - used : 0;
		buf->f_files = min(buf->f_files, limit);
		buf->f_ffree = min(buf->f_ffree, left);
	}
	spin_unlock(&dq->dq_dqb_lock);
	dqput(dq);
#endif
}
struct inode *ferrofs_quota_inode(struct super_block *sb, int type)
{
#ifdef CONFIG_QUOTA
	return sb_dqopt(sb)->files[type];
#else
	return NULL;
#endif
}
/* Whether a charge can fail: some quota type is on (not suspended) and the
 * inode is not a quota file. Without it a block charge cannot be refused,
 * so the allocating paths need not work out their growth first. */
bool ferrofs_quota_limits_may_apply(struct inode *inode)
{
#ifdef CONFIG_QUOTA
	struct super_block *sb = inode->i_sb;

	return !IS_NOQUOTA(inode) && (sb_any_quota_loaded(sb) & ~sb_any_quota_suspended(sb));
#else
	return false;
#endif
}
/*
 * Quota on at mount: loads the visible quota file of TYPE (aquota.user,
 * aquota.group or aquota.project in the root directory) in the format it
 * was written in (vfsv0, else vfsv1). -ENOENT when there is no such file.
 * Called with s_umount held for writing (fill_super, reconfigure).
 */
int ferrofs_quota_on_mount(struct super_block *sb, int type)
{
#ifdef CONFIG_QUOTA
	static char user[] = "aquota.user", group[] = "aquota.group", project[] = "aquota.project";
	char *name = type == USRQUOTA ? user : type == GRPQUOTA ? group : project;
	int err = dquot_quota_on_mount(sb, name, QFMT_VFS_V0, type);

	if (err == -EINVAL)
		err = dquot_quota_on_mount(sb, name, QFMT_VFS_V1, type);
	return err;
#else
	return -EOPNOTSUPP;
#endif
}
bool ferrofs_quota_loaded(struct super_block *sb, int type)
{
#ifdef CONFIG_QUOTA
	return sb_has_quota_loaded(sb, type);
#else
	return false;
#endif
}
/* The usage of ID's dquot of TYPE: BYTES and INODES (the recount at mount). */
int ferrofs_quota_set_usage(struct super_block *sb, int type, u32 id, u64 bytes, u64 inodes)
{
#ifdef CONFIG_QUOTA
	struct qc_dqblk d = {
		.d_fieldmask = QC_SPACE | QC_INO_COUNT,
		.d_space = bytes,
		.d_ino_count = inodes,
	};
	struct kqid q = make_kqid(&init_user_ns, type, id);

	if (!qid_valid(q))
		return -EINVAL;
	return dquot_set_dqblk(sb, q, &d);
#else
	return -EOPNOTSUPP;
#endif
}
/* The first ID at or after *ID that has a record in the quota file of
 * TYPE, into *ID; -ENOENT after the last. */
int ferrofs_quota_next_id(struct super_block *sb, int type, u32 *id)
{
#ifdef CONFIG_QUOTA
	struct kqid q = make_kqid(&init_user_ns, type, *id);
	int err;

	if (!qid_valid(q))
		return -ENOENT;
	err = dquot_get_next_id(sb, &q);
	if (!err)
		*id = from_kqid(&init_user_ns, q);
	return err;
#else
	return -EOPNOTSUPP;
#endif
}
int ferrofs_dquot_suspend(struct super_block *sb) { return dquot_suspend(sb, -1); }
int ferrofs_dquot_resume(struct super_block *sb) { return dquot_resume(sb, -1); }
int ferrofs_dquot_disable_all(struct super_block *sb)
{
	return dquot_disable(sb, -1, DQUOT_USAGE_ENABLED | DQUOT_LIMITS_ENABLED);
}
int ferrofs_dquot_writeback(struct super_block *sb) { return dquot_writeback_dquots(sb, -1); }
void ferrofs_dquot_drop(struct inode *inode) { dquot_drop(inode); }
int ferrofs_dquot_initialize(struct inode *inode) { return dquot_initialize(inode); }
int ferrofs_dquot_alloc_inode(struct inode *inode) { return dquot_alloc_inode(inode); }
void ferrofs_dquot_free_inode(struct inode *inode) { dquot_free_inode(inode); }
/* Block charges: the quota helpers own i_blocks (inode_add_bytes). */
int ferrofs_dquot_alloc_space(struct inode *inode, loff_t bytes)
{
	return __dquot_alloc_space(inode, bytes, DQUOT_SPACE_WARN);
}
void ferrofs_dquot_alloc_space_nofail(struct inode *inode, loff_t bytes)
{
	__dquot_alloc_space(inode, bytes, DQUOT_SPACE_WARN | DQUOT_SPACE_NOFAIL);
}
void ferrofs_dquot_free_space(struct inode *inode, loff_t bytes) { __dquot_free_space(inode, bytes, 0); }
loff_t ferrofs_inode_get_bytes(struct inode *inode) { return inode_get_bytes(inode); }
int ferrofs_dquot_file_open(struct inode *inode, struct file *file) { return dquot_file_open(inode, file); }
bool ferrofs_is_quota_modification(struct mnt_idmap *idmap, struct inode *inode, struct iattr *ia)
{
	return is_quota_modification(idmap, inode, ia);
}
int ferrofs_dquot_transfer(struct mnt_idmap *idmap, struct inode *inode, struct iattr *ia)
{
	return dquot_transfer(idmap, inode, ia);
}
void ferrofs_sb_clear_rdonly(struct super_block *sb) { sb->s_flags &= ~SB_RDONLY; }
